"""Order-independent skip list over a share forest: the engine behind Tracker queries.

Every share gets a level from its hash alone (each level keeps about half the
shares of the level below), so the structure is the same whatever order shares
arrived in. A share of level L keeps, for each k in 1..L, a lazily computed
jump to its nearest ancestor of level >= k, together with the distance and the
work sums of the shares jumped over. When no such ancestor is present the
jump goes to the oldest present share instead and is marked as an "end" jump.

Nothing is updated eagerly when the forest changes. A jump records the arrival
number ("birth") of its target; it stays correct while its owner and its target
are both present, because only heads and oldest shares can be removed, so the
shares between two present shares cannot disappear. An end jump is moreover
only valid while its target is still the oldest share (its parent is absent).
Invalid jumps are recomputed when met.

walk_to_last additionally memoises, for every share it passes, the end of its
walk (path compression); near the head of a long chain a walk therefore
touches only a couple of shares.
"""
import itertools
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol


class TrackedItem(Protocol):
    """What the forest needs of a share: its identity, its parent's and its work."""

    @property
    def hash(self) -> int: ...

    @property
    def previous_hash(self) -> int | None: ...

    @property
    def work(self) -> int: ...

    @property
    def min_work(self) -> int: ...


#: (target, distance, work, min_work, target_birth, is_end)
Jump = tuple[int, int, int, int, int, bool]

# One level in 2**_BITS_PER_LEVEL shares is promoted to the next level.
_BITS_PER_LEVEL = 1
_MAX_LEVEL = 30
_LEVEL_MASK = 0xFFFFFFFF
#: nth_parent follows parent links one by one up to this n (cheaper than computing a new share's jumps)
_SHORT_WALK = 8


def level_of(share_hash: int) -> int:
    """Skip-list level of a share: a deterministic function of its hash. The low bits of a share
    hash (a double SHA-256) are as good as random; Python's hash of an int (its value modulo
    2**61 - 1) keeps them so and is the cheapest way to bring any int into machine range."""
    mixed = hash(share_hash) & _LEVEL_MASK
    if not mixed:
        return _MAX_LEVEL
    trailing_zeros = (mixed & -mixed).bit_length() - 1
    return min(trailing_zeros // _BITS_PER_LEVEL, _MAX_LEVEL)


class SkipList:
    """Jump pointers and walk memos for the shares of one `items` dict."""

    #: nth_parent result when n exceeds the height
    BEYOND_TAIL: ClassVar[Any] = object()

    def __init__(self, items: Mapping[int, TrackedItem]) -> None:
        self.items = items
        self._level: dict[int, int] = {}
        self._birth: dict[int, int] = {}
        # hash -> [jump for level 1, level 2, ...] (None = not computed)
        self._jumps: dict[int, list[Jump | None]] = {}
        # hash -> (oldest, oldest_birth, height, work, min_work) excluding oldest
        self._last_memo: dict[int, tuple[int, int, int, int, int]] = {}
        self._births = itertools.count(1)

    def added(self, share_hash: int) -> None:
        """Called after items[share_hash] was added. A share on a parent with a valid walk memo (the
        usual new head) gets its own memo at once: its walk to the oldest share is the parent's plus itself.
        A share whose parent is absent is its own oldest share: remembered as such, so that a chain added
        from its oldest share on (a store's load, a download in order) has every memo without a walk."""
        self._level[share_hash] = level_of(share_hash)
        births, items = self._birth, self.items
        birth = births[share_hash] = next(self._births)
        share = items[share_hash]
        parent = share.previous_hash
        if parent is None or parent not in items:
            self._last_memo[share_hash] = (share_hash, birth, 0, 0, 0)
            return
        remembered = self._last_memo.get(parent)
        if remembered is not None:
            oldest, oldest_birth, distance, work, min_work = remembered
            if births.get(oldest) == oldest_birth and items[oldest].previous_hash not in items:
                self._last_memo[share_hash] = (oldest, oldest_birth, distance + 1, work + share.work,
                                               min_work + share.min_work)

    def removed(self, share_hash: int) -> None:
        del self._level[share_hash]
        del self._birth[share_hash]
        self._jumps.pop(share_hash, None)
        self._last_memo.pop(share_hash, None)

    # --- jumps --------------------------------------------------------------------

    def _jump(self, share_hash: int, level: int) -> Jump:
        """(target, distance, work, min_work, target_birth, is_end) for a level >= 1 jump.

        `share_hash` must have at least that level. Sums cover share_hash up to
        but excluding the target.
        """
        jumps = self._jumps.get(share_hash)
        if jumps is None:
            jumps = self._jumps[share_hash] = [None for _ in range(self._level[share_hash])]
        jump = jumps[level - 1]
        items, births = self.items, self._birth
        if jump is not None:
            target = jump[0]
            if births.get(target) == jump[4] and (not jump[5] or items[target].previous_hash not in items):
                return jump

        distance = work = min_work = 0
        current = share_hash
        levels = self._level
        while True:
            if level == 1:
                share = items[current]
                parent = share.previous_hash
                if parent is None or parent not in items:
                    jump = (current, distance, work, min_work, births[current], True)
                    break
                distance += 1
                work += share.work
                min_work += share.min_work
                current = parent
            else:
                step = self._jump(current, level - 1)
                distance += step[1]
                work += step[2]
                min_work += step[3]
                current = step[0]
                if step[5]:
                    jump = (current, distance, work, min_work, step[4], True)
                    break
            if levels[current] >= level:
                jump = (current, distance, work, min_work, births[current], False)
                break
        jumps[level - 1] = jump
        return jump

    # --- queries --------------------------------------------------------------------

    def walk_to_last(self, share_hash: int | None) -> tuple[int, int, int, int | None]:
        """(height, work, min_work, last) of share_hash; (0, 0, 0, share_hash) if absent."""
        items = self.items
        if share_hash is None or share_hash not in items:
            return 0, 0, 0, share_hash
        memo, births, levels = self._last_memo, self._birth, self._level
        remembered = memo.get(share_hash)
        if remembered is not None and births.get(remembered[0]) == remembered[1]:
            # the usual query (a head, or a share a walk passed): answered from its own memo at once
            oldest_share = items[remembered[0]]
            if oldest_share.previous_hash not in items:
                return (remembered[2] + 1, remembered[3] + oldest_share.work, remembered[4] + oldest_share.min_work,
                        oldest_share.previous_hash)
        passed: list[tuple[int, int, int, int]] = []
        distance = work = min_work = 0
        current = share_hash
        while True:
            remembered = memo.get(current)
            if remembered is not None:
                oldest = remembered[0]
                if births.get(oldest) == remembered[1] and items[oldest].previous_hash not in items:
                    distance += remembered[2]
                    work += remembered[3]
                    min_work += remembered[4]
                    break
            passed.append((current, distance, work, min_work))
            level = levels[current]
            if level:
                jump = self._jump(current, level)
                distance += jump[1]
                work += jump[2]
                min_work += jump[3]
                current = jump[0]
                if jump[5]:
                    oldest = current
                    break
            else:
                share = items[current]
                parent = share.previous_hash
                if parent is None or parent not in items:
                    oldest = current
                    break
                distance += 1
                work += share.work
                min_work += share.min_work
                current = parent
        oldest_birth = births[oldest]
        for passed_hash, d, w, m in passed:
            memo[passed_hash] = (oldest, oldest_birth, distance - d, work - w, min_work - m)
        oldest_share = items[oldest]
        return (distance + 1, work + oldest_share.work, min_work + oldest_share.min_work,
                oldest_share.previous_hash)

    def nth_parent(self, share_hash: int | None, n: int) -> Any:
        """Hash n generations above share_hash (the tail when n == height), or BEYOND_TAIL."""
        items, levels = self.items, self._level
        current, remaining = share_hash, n
        if n <= _SHORT_WALK:
            for _ in range(n):
                share = items.get(current) if current is not None else None
                if share is None:
                    return self.BEYOND_TAIL
                current = share.previous_hash
            return current
        while remaining > 0:
            if current is None or current not in items:
                return self.BEYOND_TAIL
            level = levels[current]
            while level:
                jump = self._jump(current, level)
                if 0 < jump[1] <= remaining:
                    current = jump[0]
                    remaining -= jump[1]
                    break
                level -= 1
            else:
                current = items[current].previous_hash
                remaining -= 1
        return current
