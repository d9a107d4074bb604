"""Best-chain selection: verification scheduling, scores, head choice, punishment, pruning
(the punishment rules themselves are in punishment.py, the pruning walk in pruning.py).

Implements sharechain.md §3-§6 for the jtoomim lineage ([jt]). Everything the
chooser needs from the outside world is injected, so this module reads no clock
and imports neither verify.py nor anything networked:

* verify_fn(share) -> bool: full validation (shares.md §12); on success the
  share is marked verified (added to tracker.verified) by verify_fn or, if it
  did not, by the chooser;
* rel_height(block_hash) -> int: parent-chain height of a block minus the best
  known height (<= 0), as sharechain.md §4 defines it;
* known_tx_sizes {tx key: (full size, stripped size)} and gentx_sizes
  {share hash: (stripped gentx size, gentx weight)}: only for the block-size
  punishment of VERSION < 34 shares; without them that rule is skipped.

A node keeps one Chooser and calls think(now) after new shares, new work and
every 5 s together with prune() (think_and_prune). think() costs O(heads ×
log n) when nothing changed: no walk over whole chains; after one new share on
the best head (nearly every new share) it re-scores only that share's tail and
ranks only that share (Chooser._extend).
"""
import bisect
import random
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from p2pool.sharechain.pruning import (KEEP_TOP_HEADS, PRUNE_TIME_MARGIN, HeadKey, earliest_head_prune, prune,
                                       tail_keep_height)
from p2pool.sharechain.punishment import FIRST_ADDRESS_VERSION, best_descendant, punishment, referenced_tx_keys
from p2pool.sharechain.share import Net, Share, ShareTracker
from p2pool.sharechain.tracker import Tracker, TrackerError

__all__ = ['Chooser', 'ThinkResult', 'best_descendant', 'prune', 'punishment', 'referenced_tx_keys',
           'think']

#: (peer of a known child, missing hash, newest timestamp and lowest target of the head's newest shares)
DesiredEntry = tuple[Any, int, int, int]


class ThinkResult(NamedTuple):
    """result of think(): best_hash (None without a verified chain); desired [(peer_addr, hash)]
    parents to download; decorated_heads [(key, head hash)] sorted ascending; the set of peer
    addresses that sent bad shares; the [jt] punish_aggressively flag; hashes removed (bad shares)"""
    best_hash: int | None
    desired: list[tuple[Any, int]]
    decorated_heads: list[tuple[HeadKey, int]]
    bad_peer_addresses: set[Any]
    punish_aggressively: bool
    removed: list[int]

RECENT_SHARES = 5                 # shares per head looked at for desired entries / work5
UNVERIFIED_WALK = 5               # shares tried per unverified head of an incomplete chain
DESIRED_MAX_AGE = 3600            # desired parents older than best timestamp - this are dropped
DESIRED_MAX_AGE_NO_BEST = 86400
_WINDOW_CACHE_SIZE = 16


# --- sort keys: None below any number ---------------------------------------------------

def _score_key(score: tuple[int, float | None]) -> tuple[int, int, float]:
    height, rate = score
    return (height, 0, 0) if rate is None else (height, 1, rate)


def _hash_key(share_hash: int | None) -> tuple[int, int]:
    return (0, 0) if share_hash is None else (1, share_hash)


# --- the chooser ------------------------------------------------------------------------

#: parent blocks of a window's oldest sixteenth and the newest rel_height among them, as a pass read it
HeightsRead = tuple[tuple[int | None, ...], int]
#: a verified tail's _best_tail entry: ((score key, tail hash key, tail), the heights its score read,
#: the head it was scored by)
TailEntry = tuple[tuple[tuple[int, int, float], tuple[int, int], int | None], HeightsRead | None, int]
#: a head's traditional ranking key: (work5, -time_seen, -punishment)
TraditionalKey = tuple[int, float, int]


def _top_tail(tails: Mapping[int | None, TailEntry]) -> int | None:
    return max(entry[0] for entry in tails.values())[2] if tails else None


class _Memo:
    """What one think pass found, with what it depended on beyond `now`: the change counts of the
    tracker and of its verified subset, and the parent-chain heights it read (newest rel_height
    over each window's blocks). The steps' intermediate answers (each verified tail's entry, the
    best tail, the traditional ranking) are kept for Chooser._extend."""

    __slots__ = ('counts', 'heights_read', 'best', 'desired', 'decorated_heads', 'bad_peers',
                 'punish_aggressively', 'removed', 'tails', 'best_tail', 'traditional', 'extendable')

    def __init__(self, tracker: ShareTracker, tails: dict[int | None, TailEntry], best_tail: int | None,
                 best: int | None, desired: list[DesiredEntry], decorated_heads: list[tuple[HeadKey, int]],
                 traditional: list[tuple[TraditionalKey, int]], bad_peers: set[Any], punish_aggressively: bool,
                 removed: list[int]) -> None:
        self.counts = (tracker.change_count, tracker.verified.change_count)
        self.tails, self.best_tail, self.traditional = tails, best_tail, traditional
        self.heights_read = [entry[1] for entry in tails.values() if entry[1] is not None]
        self.best, self.desired, self.decorated_heads = best, desired, decorated_heads
        self.bad_peers, self.punish_aggressively, self.removed = bad_peers, punish_aggressively, removed
        # the best share is the top-ranked head itself (no punishment moved it) and has no child yet
        self.extendable = (best is not None and best == decorated_heads[-1][1] and best in tracker.heads)

    def heights_hold(self, rel_height: Callable[[int | None], int]) -> bool:
        return all(max((rel_height(block) for block in blocks), default=0) == newest
                   for blocks, newest in self.heights_read)

    def holds(self, tracker: ShareTracker, rel_height: Callable[[int | None], int]) -> bool:
        if self.counts != (tracker.change_count, tracker.verified.change_count):
            return False
        return not self.heights_read or self.heights_hold(rel_height)


class Chooser:
    """Keeps the small caches that make repeated think() calls cheap."""

    def __init__(self, tracker: ShareTracker, net: Net, verify_fn: Callable[[Share], bool],
                 rel_height: Callable[[int | None], int],
                 known_tx_sizes: Mapping[int, tuple[int, int]] | None = None,
                 gentx_sizes: Mapping[int, tuple[int, int]] | None = None, rng: random.Random | None = None,
                 punish_fn: Callable[[Share], int] | None = None) -> None:
        self.tracker = tracker
        self.net = net
        self.verify_fn = verify_fn
        self.rel_height = rel_height
        self.known_tx_sizes = known_tx_sizes
        self.gentx_sizes = gentx_sizes
        self.rng = rng if rng is not None else random.Random()
        self.punish_fn = punish_fn or (lambda share: punishment(
            share, self.tracker, self.net, self.known_tx_sizes, self.gentx_sizes))
        # a punish_fn of the caller's may read anything: its passes are never remembered
        self._default_punish = punish_fn is None
        self._memo: _Memo | None = None
        self._verify_calls = 0
        self._heights_read: list[HeightsRead] = []
        self._memo_safe = True
        # window end hash -> previous_block hashes of its oldest sixteenth
        self._window_blocks: dict[int | None, tuple[int | None, ...]] = {}
        # (memo, desired cutoff, the ThinkResult built from them): think() answers it again
        self._last_result: tuple[_Memo, float, ThinkResult] | None = None
        # a prune that removed nothing: (tracker change counts, its decorated heads, the earliest
        # `now` at which a head could become prunable); see think_and_prune
        self._quiet_prune: tuple[tuple[int, int], list[tuple[HeadKey, int]], float] | None = None
        # (change counts, quiet prune's earliest time, best share's timestamp, the idle result):
        # idle_result's answer while the counts hold and `now` lies between those two times, for a pass
        # that read no parent-chain height
        self._idle_token: tuple[int, int, float, int, ThinkResult] | None = None

    # --- §3 verification ----------------------------------------------------------

    def _attempt_verify(self, share: Share, failed: set[int]) -> bool:
        verified = self.tracker.verified
        if share.hash in verified.items:
            return True
        if share.hash in failed:
            return False
        self._verify_calls += 1
        if self.verify_fn(share):
            if share.hash not in verified.items:
                verified.add(share)
            return True
        failed.add(share.hash)
        return False

    def _desired_entry(self, source: Tracker[Share], head: int, head_height: int, parent_of_missing: int | None,
                       missing: int) -> DesiredEntry:
        """(peer of a random known child of parent_of_missing, missing hash, newest
        timestamp and lowest target among the head's newest shares)."""
        child = self.rng.choice(sorted(source.reverse[parent_of_missing]))
        recent = list(self.tracker.get_chain_unchecked(head, min(head_height, RECENT_SHARES)))
        return (self.tracker.items[child].peer_addr, missing,
                max(share.timestamp for share in recent), min(share.target for share in recent))

    def _verify_heads(self, desired: list[DesiredEntry], failed: set[int]) -> list[int]:
        """§3 step 1: returns the bad share hashes, newest first per head."""
        tracker, chain_length = self.tracker, self.net.CHAIN_LENGTH
        bad: list[int] = []
        for head in [h for h in tracker.heads if h not in tracker.verified.heads]:
            height, last = tracker.get_height_and_last(head)
            count = height if last is None else min(UNVERIFIED_WALK, max(0, height - chain_length))
            for share in tracker.get_chain_unchecked(head, count):
                if self._attempt_verify(share, failed):
                    break
                bad.append(share.hash)
            else:
                if last is not None:
                    desired.append(self._desired_entry(tracker, head, height, last, last))
        return bad

    def _remove_bad(self, bad: list[int]) -> tuple[set[Any], list[int]]:
        """§3 step 2: (peer addresses to ban, hashes actually removed)."""
        tracker = self.tracker
        bad_peers: set[Any] = set()
        removed: list[int] = []
        for share_hash in bad:
            share = tracker.items.get(share_hash)
            if share is None:
                continue
            if share.peer_addr is not None:
                bad_peers.add(share.peer_addr)
            try:
                tracker.remove(share_hash)
            except TrackerError:
                continue  # not a head or oldest share (yet); a later pass may get it
            removed.append(share_hash)
        return bad_peers, removed

    def _extend_verified(self, desired: list[DesiredEntry], failed: set[int]) -> None:
        """§3 step 3: verify downwards from each verified chain's tail."""
        tracker, verified, chain_length = self.tracker, self.tracker.verified, self.net.CHAIN_LENGTH
        for head in list(verified.heads):
            verified_height, verified_last = verified.get_height_and_last(head)
            height, last = tracker.get_height_and_last(verified_last)
            want = max(chain_length - verified_height, 0)
            can = max(height - 1 - chain_length, 0) if last is not None else height
            calls = self._verify_calls
            for share in tracker.get_chain_unchecked(verified_last, min(want, can)):
                if not self._attempt_verify(share, failed):
                    break
            if last is not None and self._verify_calls != calls:
                self._memo_safe = False   # a next pass would go on further down and want other parents
            if verified_height < chain_length and last is not None:
                desired.append(self._desired_entry(verified, head, verified_height, verified_last, last))

    # --- §4 best tail --------------------------------------------------------------

    def _oldest_sixteenth_blocks(self, end: int | None) -> tuple[int | None, ...]:
        """Distinct parent blocks referenced by the CHAIN_LENGTH//16 verified shares from
        `end` (a fact of the hash chain, so cached by `end`)."""
        blocks = self._window_blocks.get(end)
        if blocks is None:
            count = self.net.CHAIN_LENGTH // 16
            blocks = tuple({share.header['previous_block']
                            for share in self.tracker.verified.get_chain(end, count)})
            if len(self._window_blocks) >= _WINDOW_CACHE_SIZE:
                self._window_blocks.clear()
            self._window_blocks[end] = blocks
        return blocks

    def tail_score(self, head: int, height: int | None = None) -> tuple[int, float | None]:
        """(height, None) below CHAIN_LENGTH, else (CHAIN_LENGTH, work per parent-chain time).
        `height`: the head's verified height if the caller has just measured it."""
        verified, chain_length = self.tracker.verified, self.net.CHAIN_LENGTH
        if height is None:
            height = verified.get_height(head)
        if height < chain_length:
            return height, None
        end = verified.get_nth_parent_hash(head, chain_length * 15 // 16)
        blocks = self._oldest_sixteenth_blocks(end)
        newest = max((self.rel_height(block) for block in blocks), default=0)
        self._heights_read.append((blocks, newest))
        # rel_height is <= 0 by definition; clamp so a misbehaving source cannot divide by zero
        periods = max(0 - newest + 1, 1)
        rate: float = verified.get_delta(head, end).work / (periods * self.net.PARENT.BLOCK_PERIOD)
        return chain_length, rate

    def _tail_entry(self, tail: int | None, head: int | None = None, head_height: int | None = None) -> TailEntry:
        """The tail's score (that of its head with the most work, if known `head`, of verified height
        `head_height` if known) with the heights it read."""
        verified = self.tracker.verified
        if head is None:
            head = max(verified.tails[tail], key=lambda h: (verified.get_work(h), h))
        reads = len(self._heights_read)
        score = self.tail_score(head, head_height)
        read = self._heights_read[-1] if len(self._heights_read) > reads else None
        return (_score_key(score), _hash_key(tail), tail), read, head

    def _best_tail(self) -> tuple[dict[int | None, TailEntry], int | None]:
        """({verified tail: its entry}, the best tail or None without any)."""
        tails = {tail: self._tail_entry(tail) for tail in self.tracker.verified.tails}
        return tails, _top_tail(tails)

    # --- §5 heads and punishment -------------------------------------------------------

    def _head_keys(self, head: int, punish: Callable[[int], int], height: int | None = None
                   ) -> tuple[HeadKey, TraditionalKey]:
        """A verified head's ([jt] ranking key, traditional ranking key); `height`: its verified
        height if the caller has just measured it."""
        verified = self.tracker.verified
        share = self.tracker.items[head]
        if height is None:
            height = verified.get_height(head)
        older = verified.get_nth_parent_hash(head, min(RECENT_SHARES, height))
        work5 = verified.get_work(older)
        punished = punish(head)
        return (work5 - min(punished, 1) * share.work, -punished, -share.time_seen), (work5, -share.time_seen,
                                                                                      -punished)

    def _rank_heads(self, best_tail: int | None, punish: Callable[[int], int]
                    ) -> tuple[list[tuple[HeadKey, int]], list[tuple[TraditionalKey, int]]]:
        """([jt] decorated heads, traditional ranking), both sorted ascending."""
        decorated: list[tuple[HeadKey, int]] = []
        traditional: list[tuple[TraditionalKey, int]] = []
        for head in self.tracker.verified.tails[best_tail]:
            key, traditional_key = self._head_keys(head, punish)
            decorated.append((key, head))
            traditional.append((traditional_key, head))
        decorated.sort()
        traditional.sort()
        return decorated, traditional

    def _apply_punishment(self, best: int, punish: Callable[[int], int]) -> int:
        """[jt] §5.3: step back from punished shares, then forward to the best clean descendant."""
        items = self.tracker.items
        punished = punish(best)
        while punished > 0:
            parent = items[best].previous_hash
            if parent is None or parent not in items:
                break  # nothing older to fall back to: keep the share
            best = parent
            punished = punish(best)
            if punished == 0:
                best = best_descendant(self.tracker, best)[1]
        return best

    # --- the whole pass ---------------------------------------------------------------

    def think(self, now: float) -> ThinkResult:
        """One evaluation (§3 steps 1-5); returns a ThinkResult.

        A pass in which no verification failed and nothing was removed is remembered (`_Memo`):
        until the tracker or its verified subset changes, or a parent-chain height it read moves,
        the next pass would compute the same, so it is answered from the memo (the 5-second job
        and the work bridge call think far more often than shares arrive). A pass whose
        verifications succeeded leaves a state in which the next pass verifies nothing: step 1
        verified each head it tried, step 3 went down as far as its budget allows, so a next
        pass tries only the share it stopped at. Not remembered: a step 3 that verified on a
        chain with missing parents (its desired entry would move), and punishments of
        VERSION < 34 shares (they follow the known transactions)."""
        memo = self._memo
        if memo is None:
            memo = self._evaluate()
        elif not memo.holds(self.tracker, self.rel_height):
            memo = self._extend(memo) or self._evaluate()
        best, desired = memo.best, memo.desired
        if best is not None:
            cutoff = min(now, self.tracker.items[best].timestamp) - DESIRED_MAX_AGE
        else:
            cutoff = now - DESIRED_MAX_AGE_NO_BEST
        last = self._last_result
        if last is not None and last[0] is memo and last[1] == cutoff:
            return last[2]   # the same pass filtered at the same cutoff: the same result
        wanted: list[tuple[Any, int]] = []
        seen: set[tuple[Any, int]] = set()
        for peer_addr, share_hash, timestamp, _target in desired:
            if timestamp >= cutoff and (peer_addr, share_hash) not in seen:
                seen.add((peer_addr, share_hash))
                wanted.append((peer_addr, share_hash))
        result = ThinkResult(best, wanted, memo.decorated_heads, memo.bad_peers, memo.punish_aggressively,
                             memo.removed)
        self._last_result = (memo, cutoff, result)
        return result

    def _punish_function(self) -> Callable[[int], int]:
        """punish_fn by share hash, each share's value computed once in the pass."""
        tracker = self.tracker
        punish_cache: dict[int, int] = {}

        def punish(share_hash: int) -> int:
            value = punish_cache.get(share_hash)
            if value is None:
                share = tracker.items[share_hash]
                if share.VERSION < FIRST_ADDRESS_VERSION:
                    self._memo_safe = False   # its punishment follows the known transactions
                value = punish_cache[share_hash] = self.punish_fn(share)
            return value
        return punish

    def _evaluate(self, failed: set[int] | None = None) -> _Memo:
        """The pass itself, up to the `now`-dependent filter of the desired parents. `failed`: the
        shares whose verification failed earlier in this pass (_extend's)."""
        self._memo = None
        self._verify_calls = 0
        self._heights_read = []
        self._memo_safe = self._default_punish
        desired: list[DesiredEntry] = []
        if failed is None:
            failed = set()
        bad = self._verify_heads(desired, failed)
        bad_peers, removed = self._remove_bad(bad)
        self._extend_verified(desired, failed)
        punish = self._punish_function()
        tails, best_tail = self._best_tail()
        decorated_heads, traditional = self._rank_heads(best_tail, punish) if tails else ([], [])
        return self._finish(tails, best_tail, desired, decorated_heads, traditional, punish, bad_peers,
                            removed, failed)

    def _finish(self, tails: dict[int | None, TailEntry], best_tail: int | None, desired: list[DesiredEntry],
                decorated_heads: list[tuple[HeadKey, int]], traditional: list[tuple[TraditionalKey, int]],
                punish: Callable[[int], int], bad_peers: set[Any], removed: list[int], failed: set[int]) -> _Memo:
        """Steps 4-5 after the ranking: the punishment walk; the memo, remembered if the pass allows."""
        best = decorated_heads[-1][1] if decorated_heads else None
        punish_aggressively = bool(traditional) and traditional[-1][0][2] != 0
        if best is not None:
            best = self._apply_punishment(best, punish)
        memo = _Memo(self.tracker, tails, best_tail, best, desired, decorated_heads, traditional, bad_peers,
                     punish_aggressively, removed)
        if self._memo_safe and not failed and not removed:
            self._memo = memo
        return memo

    def _extend(self, memo: _Memo) -> _Memo | None:
        """The pass after the remembered `memo` when the one change since is a new share on its best
        head (how nearly every new share arrives), else None with nothing done.

        A full pass would find what `memo` found for everything but that share: its other heads and
        tails are untouched and, as think() explains, it would verify nothing else. So: step 1 on
        the new share, the new share's own step 3 check, the score of its tail and its rank among the
        remembered heads. Where the new share changes more than that (it fails verification, step 3
        would verify below it or ask for other parents, its tail stops being the best) the pass goes
        on as a full one from there (_evaluate), which then verifies nothing that was verified here.
        """
        tracker, verified, chain_length = self.tracker, self.tracker.verified, self.net.CHAIN_LENGTH
        old_best = memo.best
        if (not memo.extendable or tracker.change_count != memo.counts[0] + 1
                or verified.change_count != memo.counts[1] or old_best not in tracker.items
                or old_best in tracker.heads):
            return None
        children = tracker.reverse[old_best]   # it had none: the one change added a share on it
        if len(children) != 1:
            return None
        new = next(iter(children))
        share = tracker.items[new]
        if new not in tracker.heads or (memo.heights_read and not memo.heights_hold(self.rel_height)):
            return None   # it filled a gap below other shares, or a tail's score moved
        # step 1 tries the new head unless its chain has a missing parent within CHAIN_LENGTH (then a
        # full pass is as cheap); tracker.heads names a head's tail without a walk
        if tracker.heads[new] is not None and tracker.get_height(new) <= chain_length:
            return None
        self._memo = None
        self._verify_calls = 0
        self._heights_read = []
        self._memo_safe = True
        failed: set[int] = set()
        if not self._attempt_verify(share, failed):
            return self._evaluate(failed)
        verified_height, verified_last = verified.get_height_and_last(new)
        if verified_last is not None:   # (a verified chain down to the first share: nothing below it)
            below_height, below_last = tracker.get_height_and_last(verified_last)
            want = max(chain_length - verified_height, 0)
            can = max(below_height - 1 - chain_length, 0) if below_last is not None else below_height
            if min(want, can) or (below_last is not None and verified_height - 1 < chain_length):
                return self._evaluate(failed)   # step 3 would verify below it, or its desired entry moves
        tails = dict(memo.tails)
        # the tail's heaviest head is the new share if it was its parent (the new share adds work), else the
        # heavier of the two (the other heads are as they were)
        heaviest: int | None = tails[verified_last][2]
        if heaviest != old_best:
            heaviest = max(heaviest, new, key=lambda h: (verified.get_work(h), h))
        else:
            heaviest = new if share.work > 0 else None
        tails[verified_last] = self._tail_entry(verified_last, heaviest,
                                                verified_height if heaviest == new else None)
        best_tail = _top_tail(tails)
        if best_tail != memo.best_tail:
            return self._evaluate(failed)
        punish = self._punish_function()
        key, traditional_key = self._head_keys(new, punish, verified_height)
        # the best share was the top-ranked head (memo.extendable): the others keep their order below it
        decorated_heads = memo.decorated_heads[:-1]
        traditional = [entry for entry in memo.traditional if entry[1] != old_best]
        position = bisect.bisect_right(decorated_heads, (key, new))
        decorated_heads.insert(position, (key, new))
        bisect.insort(traditional, (traditional_key, new))
        extended = self._finish(tails, best_tail, memo.desired, decorated_heads, traditional, punish, set(), [],
                                failed)
        self._carry_quiet_prune(memo, extended, position)
        return extended

    def _carry_quiet_prune(self, before: _Memo, after: _Memo, new_position: int) -> None:
        """A prune that removed nothing from `before`'s forest would remove nothing from `after`'s,
        until the same time, if the new head (at `new_position` of after.decorated_heads) took the
        place of the old best share (before's top-ranked head) among the kept top heads: every other
        head keeps its place, its time seen and its tail. The other heads keep their order, so that
        is when the new head ranks among the top KEEP_TOP_HEADS. Not when prune's second part could
        drop old shares (from tail_keep_height shares on: the new share makes a chain higher)."""
        quiet = self._quiet_prune
        if (quiet is None or quiet[0] != before.counts or quiet[1] is not before.decorated_heads
                or len(self.tracker.items) >= tail_keep_height(self.net)):
            return
        if new_position >= len(after.decorated_heads) - KEEP_TOP_HEADS:
            self._quiet_prune = (after.counts, after.decorated_heads, quiet[2])

    def idle_result(self, now: float) -> ThinkResult | None:
        """The result think_and_prune(now) would return if it would neither evaluate, filter nor
        prune anything (the remembered pass holds, the desired cutoff and the forest are as at the
        last fruitless prune, no head can be due yet), else None. Nothing is computed or changed."""
        tracker = self.tracker
        token = self._idle_token
        if (token is not None and token[3] <= now < token[2] and token[0] == tracker.change_count
                and token[1] == tracker.verified.change_count):
            return token[4]
        last, quiet, memo = self._last_result, self._quiet_prune, self._memo
        if last is None or quiet is None or memo is None or last[0] is not memo or now >= quiet[2]:
            return None
        if quiet[1] is not memo.decorated_heads or not memo.holds(tracker, self.rel_height):
            return None
        best = memo.best
        if best is not None:
            best_timestamp = tracker.items[best].timestamp
            cutoff = min(now, best_timestamp) - DESIRED_MAX_AGE
        else:
            cutoff = now - DESIRED_MAX_AGE_NO_BEST
        if last[1] != cutoff:
            return None
        if best is not None and best_timestamp <= now and not memo.heights_read:
            # the same answer until the forest changes or a head can be due: the memo holds on the
            # counts alone and the cutoff stays at the best share's timestamp for every later `now`
            self._idle_token = (memo.counts[0], memo.counts[1], quiet[2], best_timestamp, last[2])
        return last[2]

    def think_and_prune(self, now: float) -> tuple[ThinkResult, list[int]]:
        """The 5-second job (§6): think, prune, think again. Returns (ThinkResult, removed
        hashes in removal order, including bad shares removed by either think)."""
        first = self.think(now)
        tracker = self.tracker
        counts = (tracker.change_count, tracker.verified.change_count)
        quiet = self._quiet_prune
        if quiet is not None and quiet[0] == counts and quiet[1] is first.decorated_heads and now < quiet[2]:
            return first, first.removed  # the same forest as at the last fruitless prune, too early for a head
        pruned = prune(tracker, first.decorated_heads, now, self.net)
        if not pruned:
            self._quiet_prune = (counts, first.decorated_heads,
                                 earliest_head_prune(tracker, first.decorated_heads) - PRUNE_TIME_MARGIN)
            return first, first.removed  # nothing changed since the first think: it stands
        second = self.think(now)
        return second, first.removed + pruned + second.removed


def think(tracker: ShareTracker, net: Net, now: float, verify_fn: Callable[[Share], bool],
          rel_height: Callable[[int | None], int], known_tx_sizes: Mapping[int, tuple[int, int]] | None = None,
          gentx_sizes: Mapping[int, tuple[int, int]] | None = None, rng: random.Random | None = None,
          punish_fn: Callable[[Share], int] | None = None) -> ThinkResult:
    """One-off think() without caches kept between calls (see Chooser)."""
    return Chooser(tracker, net, verify_fn, rel_height, known_tx_sizes, gentx_sizes, rng,
                   punish_fn).think(now)
