"""The share forest (sharechain.md §1): heads, tails, heights, work and ancestors.

A Tracker holds any objects with `.hash`, `.previous_hash`, `.work` and
`.min_work`. Shares arrive in any order: a downloading node receives children
before their parents, so chains grow at the tail as well as at the head, and
pruning removes the oldest shares. Every query therefore works on a canonical
skip list (p2pool.sharechain.tracker_skiplist) whose shape depends only on the share
hashes, never on the order of arrival:

* get_height / get_work / get_last walk to the oldest share in O(log n) and
  remember the result for every share they pass ("path compression"), so the
  usual queries near the head are amortised O(1);
* get_nth_parent_hash is a finger search in O(log n).

Nothing is rebuilt when shares are added or removed; stale cache entries are
recognised (they name a share by its arrival number) and recomputed on use.

`Tracker.verified` is the verified subset (§1.3): a second forest over the same
share objects. Removing a share from the full tracker removes it from the
verified subset first, so the subset never holds a share the full tracker lacks.
"""
from collections.abc import Callable, Iterator
from typing import Generic, NamedTuple, TypeVar

from p2pool.sharechain.tracker_skiplist import SkipList, TrackedItem

__all__ = ['Delta', 'Tracker', 'TrackerError', 'VerifiedTracker']


class TrackerError(ValueError):
    """Invalid tracker operation: duplicate add, unsupported removal, bad query."""


class Delta(NamedTuple):
    """attribute sums over a stretch of chain (sharechain.md §1.2)"""
    height: int
    work: int
    min_work: int


_ZERO = Delta(0, 0, 0)

Item = TypeVar('Item', bound=TrackedItem)


def _format_hash(share_hash: object) -> str:
    return '%064x' % share_hash if isinstance(share_hash, int) and share_hash >= 0 else repr(share_hash)


class Tracker(Generic[Item]):
    """A forest of shares keyed by hash.

    Public, read-only for callers:
      items    hash -> share
      reverse  parent hash -> set of child hashes (parents need not be present)
      heads    head hash -> its tail
      tails    tail hash (None for a complete chain) -> set of head hashes
      change_count  increases on every add and remove (cheap cache key)
      on_added / on_removed  lists of callables taking the share, called after
        the change
    """

    def __init__(self) -> None:
        self._init_forest()
        self.verified: VerifiedTracker[Item] = VerifiedTracker(self)

    def _init_forest(self) -> None:
        self.items: dict[int, Item] = {}
        self.reverse: dict[int | None, set[int]] = {}
        self.heads: dict[int, int | None] = {}
        self.tails: dict[int | None, set[int]] = {}
        self.change_count = 0
        self.on_added: list[Callable[[Item], object]] = []
        self.on_removed: list[Callable[[Item], object]] = []
        self._skip = SkipList(self.items)

    # --- container protocol ---------------------------------------------------

    def __contains__(self, share_hash: object) -> bool:
        return share_hash in self.items

    def __len__(self) -> int:
        return len(self.items)

    def get(self, share_hash: int | None, default: Item | None = None) -> Item | None:
        return self.items.get(share_hash, default) if share_hash is not None else default

    # --- changes ----------------------------------------------------------------

    def add(self, share: Item) -> None:
        """Add a share; its hash must not be present yet (TrackerError)."""
        share_hash, parent = share.hash, share.previous_hash
        items, heads, tails = self.items, self.heads, self.tails
        if share_hash in items:
            raise TrackerError('share %s is already in the tracker' % _format_hash(share_hash))
        if share_hash is None or parent == share_hash:
            raise TrackerError('share with an invalid hash or a parent equal to itself')
        tail: int | None
        on_head = False
        if parent is None or parent not in items:
            tail = parent
        elif parent in heads:   # the usual new share; the parent gains its first child
            on_head, tail = True, heads.pop(parent)
        else:
            tail = self._skip.walk_to_last(parent)[3]

        items[share_hash] = share
        self._skip.added(share_hash)
        if on_head:
            self.reverse[parent] = {share_hash}   # a head has no children
            tails[tail].discard(parent)
        else:
            self.reverse.setdefault(parent, set()).add(share_hash)
        moved_heads = tails.pop(share_hash, None)
        if moved_heads is not None:  # the share filled a gap: its descendants now end at our tail
            for head in moved_heads:
                heads[head] = tail
            tails.setdefault(tail, set()).update(moved_heads)
        else:
            heads[share_hash] = tail
            tails.setdefault(tail, set()).add(share_hash)

        self.change_count += 1
        if self.on_added:
            for callback in list(self.on_added):
                callback(share)

    def remove(self, share_hash: int) -> None:
        """Remove a head or the oldest share of a chain (any other share: TrackerError)."""
        items = self.items
        share = items.get(share_hash)
        if share is None:
            raise TrackerError('share %s is not in the tracker' % _format_hash(share_hash))
        parent = share.previous_hash
        is_head = share_hash in self.heads
        is_oldest = parent not in items
        if not (is_head or is_oldest):
            raise TrackerError('only a head or the oldest share of a chain can be removed')
        self._before_remove(share_hash)

        siblings = self.reverse[parent]
        if is_head:
            tail = self.heads.pop(share_hash)
            self._discard_head_from_tail(tail, share_hash)
            if parent is not None and not is_oldest and len(siblings) == 1:  # the parent becomes a head
                self.heads[parent] = tail
                self.tails.setdefault(tail, set()).add(parent)
        else:
            # The oldest share with descendants: the heads above it now end at it.
            if len(siblings) == 1:
                moved = self.tails.pop(parent)
            else:
                moved = {head for head in self.tails[parent]
                         if self.get_nth_parent_hash(head, self.get_height(head) - 1) == share_hash}
                self.tails[parent] -= moved
                if not self.tails[parent]:
                    del self.tails[parent]
            for head in moved:
                self.heads[head] = share_hash
            self.tails[share_hash] = moved

        siblings.discard(share_hash)
        if not siblings:
            del self.reverse[parent]
        del items[share_hash]
        self._skip.removed(share_hash)

        self.change_count += 1
        for callback in list(self.on_removed):
            callback(share)

    def _before_remove(self, share_hash: int) -> None:
        if share_hash in self.verified.items:
            self.verified.remove(share_hash)

    def _discard_head_from_tail(self, tail: int | None, head: int) -> None:
        heads = self.tails[tail]
        heads.discard(head)
        if not heads:
            del self.tails[tail]

    # --- queries ------------------------------------------------------------------

    def get_height_and_last(self, share_hash: int | None) -> tuple[int, int | None]:
        """(number of known shares from share_hash down to its tail, that tail)."""
        height, _work, _min_work, last = self._skip.walk_to_last(share_hash)
        return height, last

    def get_height(self, share_hash: int | None) -> int:
        return self._skip.walk_to_last(share_hash)[0]

    def get_last(self, share_hash: int | None) -> int | None:
        return self._skip.walk_to_last(share_hash)[3]

    def get_work(self, share_hash: int | None) -> int:
        return self._skip.walk_to_last(share_hash)[1]

    def get_min_work(self, share_hash: int | None) -> int:
        return self._skip.walk_to_last(share_hash)[2]

    def get_delta_to_last(self, share_hash: int | None) -> Delta:
        height, work, min_work, _last = self._skip.walk_to_last(share_hash)
        return Delta(height, work, min_work)

    def get_delta(self, descendant: int | None, ancestor: int | None) -> Delta:
        """Sums over `descendant` down to but excluding `ancestor`.

        `ancestor` must be `descendant` itself, one of its ancestors, or its tail;
        anything else raises TrackerError.
        """
        if descendant == ancestor:
            return _ZERO
        walk = self._skip.walk_to_last
        height_a, work_a, min_work_a, last_a = walk(descendant)
        height_b, work_b, min_work_b, last_b = walk(ancestor)
        if last_a != last_b or height_b >= height_a or (
                height_b and self.get_nth_parent_hash(descendant, height_a - height_b) != ancestor):
            raise TrackerError('get_delta: the second share is not an ancestor of the first')
        return Delta(height_a - height_b, work_a - work_b, min_work_a - min_work_b)

    def get_nth_parent_hash(self, share_hash: int | None, n: int) -> int | None:
        """The hash n generations above share_hash; n may equal the height (-> the tail)."""
        if n < 0:
            raise TrackerError('get_nth_parent_hash: negative n')
        result = self._skip.nth_parent(share_hash, n)
        if result is SkipList.BEYOND_TAIL:
            raise TrackerError('get_nth_parent_hash: %d is more than the height' % n)
        found: int | None = result
        return found

    def get_chain(self, share_hash: int | None, n: int) -> Iterator[Item]:
        """Iterator over the n shares share_hash, its parent, ...; n <= height (TrackerError)."""
        if n > self.get_height(share_hash) or n < 0:
            raise TrackerError('get_chain: chain is shorter than %d' % n)
        return self._iterate_chain(share_hash, n)

    def get_chain_unchecked(self, share_hash: int | None, n: int) -> Iterator[Item]:
        """get_chain for an n the caller has just measured to be at most the height (no second walk)."""
        return self._iterate_chain(share_hash, n)

    def _iterate_chain(self, share_hash: int | None, n: int) -> Iterator[Item]:
        items = self.items
        for _ in range(n):
            assert share_hash is not None, 'n is at most the height'
            share = items[share_hash]
            yield share
            share_hash = share.previous_hash

    def is_child_of(self, share_hash: int | None, possible_child_hash: int | None) -> bool | None:
        """True if possible_child_hash is share_hash or descends from it; False if
        both are in the same tree otherwise; None if their tails differ."""
        height, last = self.get_height_and_last(share_hash)
        child_height, child_last = self.get_height_and_last(possible_child_hash)
        if child_last != last:
            return None
        up = child_height - height
        return up >= 0 and self.get_nth_parent_hash(possible_child_hash, up) == share_hash


class VerifiedTracker(Tracker[Item]):
    """The verified subset of a Tracker (sharechain.md §1.3).

    Only shares present in the full tracker may be added. get_nth_parent_hash
    walks the full tracker, so it may return hashes that are not verified.
    """

    def __init__(self, full: Tracker[Item]) -> None:
        self._init_forest()
        self.full = full

    def add(self, share: Item) -> None:
        if self.full.items.get(share.hash) is not share:
            raise TrackerError('only shares in the full tracker can be marked verified')
        Tracker.add(self, share)

    def _before_remove(self, share_hash: int) -> None:
        pass

    def get_nth_parent_hash(self, share_hash: int | None, n: int) -> int | None:
        return self.full.get_nth_parent_hash(share_hash, n)

