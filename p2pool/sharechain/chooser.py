"""Best-chain selection: verification scheduling, scores, head choice, punishment, pruning.

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
log n) when nothing changed: no walk over whole chains.
"""
import random
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from p2pool.bitcoin.data import bits_to_target
from p2pool.sharechain.share import Net, Share, ShareTracker
from p2pool.sharechain.tracker import Tracker, TrackerError

__all__ = ['Chooser', 'ThinkResult', 'best_descendant', 'prune', 'punishment', 'referenced_tx_keys',
           'think']

#: a head's [jt] ranking key: (work5 less the punished share's work, -punishment, -time_seen)
HeadKey = tuple[int, int, float]
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

FIRST_ADDRESS_VERSION = 34        # from here on shares carry no transaction list
RECENT_SHARES = 5                 # shares per head looked at for desired entries / work5
UNVERIFIED_WALK = 5               # shares tried per unverified head of an incomplete chain
BEST_DESCENDANT_LIMIT = 20        # best_descendant stops 21 generations down
DESIRED_MAX_AGE = 3600            # desired parents older than best timestamp - this are dropped
DESIRED_MAX_AGE_NO_BEST = 86400
HEAD_MIN_AGE = 300                # prune: heads seen this recently are kept
TAIL_CHILDREN_MIN_AGE = 120       # prune: unverified heads whose tail got children this recently stay
KEEP_TOP_HEADS = 5
PRUNE_PASSES = 1000
_WINDOW_CACHE_SIZE = 16


# --- punishment (§5.1 [jt]) ------------------------------------------------------------

def referenced_tx_keys(tracker: ShareTracker, share: Share) -> list[int] | None:
    """Transaction keys a VERSION < 34 share puts in its block, or None if an
    ancestor it refers to is not in the tracker (shares.md §12 step 3)."""
    refs = share.transaction_hash_refs
    if not refs:
        return []
    ancestors = [share]
    deepest = max(share_count for share_count, _tx_count in refs)
    while len(ancestors) <= deepest:
        parent = tracker.get(ancestors[-1].previous_hash)
        if parent is None:
            return None
        ancestors.append(parent)
    keys: list[int] = []
    for share_count, tx_count in refs:
        hashes = ancestors[share_count].new_transaction_hashes
        if tx_count >= len(hashes):
            return None
        keys.append(hashes[tx_count])
    return keys


def punishment(share: Share, tracker: ShareTracker, net: Net,
               known_tx_sizes: Mapping[int, tuple[int, int]] | None = None,
               gentx_sizes: Mapping[int, tuple[int, int]] | None = None) -> int:
    """[jt] should_punish value: -1 block solution (preferred), 0 fine, > 0 punish.

    1. a block solution -> -1; 2. naughty n > 0 -> n; 3. VERSION < 34 with every
    transaction size known: over BLOCK_MAX_WEIGHT or BLOCK_MAX_SIZE -> 1.
    """
    if share.pow_hash <= bits_to_target(share.header['bits']):
        return -1
    if share.naughty:
        return share.naughty
    if share.VERSION < FIRST_ADDRESS_VERSION and known_tx_sizes is not None and gentx_sizes is not None:
        gentx = gentx_sizes.get(share.hash)
        keys = referenced_tx_keys(tracker, share) if gentx is not None else None
        if gentx is not None and keys is not None and all(key in known_tx_sizes for key in keys):
            full_size = sum(known_tx_sizes[key][0] for key in keys)
            stripped_size = sum(known_tx_sizes[key][1] for key in keys)
            gentx_size, gentx_weight = gentx
            header_size = 80
            if full_size + 3 * stripped_size + 4 * header_size + gentx_weight > net.BLOCK_MAX_WEIGHT:
                return 1
            if stripped_size + header_size + gentx_size > net.BLOCK_MAX_SIZE:
                return 1
    return 0


def best_descendant(tracker: ShareTracker, share_hash: int, limit: int = BEST_DESCENDANT_LIMIT) -> tuple[int, int]:
    """(generations, hash): the deepest descendant reachable through non-naughty
    children of the full tracker, at most limit + 1 generations down; ties go to
    the larger descendant hash (§5.3)."""
    if limit < 0:
        return 0, share_hash
    items = tracker.items
    found = [best_descendant(tracker, child, limit - 1)
             for child in tracker.reverse.get(share_hash, ()) if not items[child].naughty]
    if not found:
        return 0, share_hash
    generations, descendant = max(found)
    return generations + 1, descendant


# --- sort keys: None below any number ---------------------------------------------------

def _score_key(score: tuple[int, float | None]) -> tuple[int, int, float]:
    height, rate = score
    return (height, 0, 0) if rate is None else (height, 1, rate)


def _hash_key(share_hash: int | None) -> tuple[int, int]:
    return (0, 0) if share_hash is None else (1, share_hash)


# --- the chooser ------------------------------------------------------------------------

class _Memo:
    """What one think pass found, with what it depended on beyond `now`: the change counts of the
    tracker and of its verified subset, and the parent-chain heights it read (newest rel_height
    over each window's blocks)."""

    __slots__ = ('counts', 'heights_read', 'best', 'desired', 'decorated_heads', 'bad_peers',
                 'punish_aggressively', 'removed')

    def __init__(self, tracker: ShareTracker, heights_read: list[tuple[tuple[int | None, ...], int]],
                 best: int | None, desired: list[DesiredEntry], decorated_heads: list[tuple[HeadKey, int]],
                 bad_peers: set[Any], punish_aggressively: bool, removed: list[int]) -> None:
        self.counts = (tracker.change_count, tracker.verified.change_count)
        self.heights_read = heights_read
        self.best, self.desired, self.decorated_heads = best, desired, decorated_heads
        self.bad_peers, self.punish_aggressively, self.removed = bad_peers, punish_aggressively, removed

    def holds(self, tracker: ShareTracker, rel_height: Callable[[int | None], int]) -> bool:
        if self.counts != (tracker.change_count, tracker.verified.change_count):
            return False
        if not self.heights_read:
            return True
        return all(max((rel_height(block) for block in blocks), default=0) == newest
                   for blocks, newest in self.heights_read)


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
        self._heights_read: list[tuple[tuple[int | None, ...], int]] = []
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

    def tail_score(self, head: int) -> tuple[int, float | None]:
        """(height, None) below CHAIN_LENGTH, else (CHAIN_LENGTH, work per parent-chain time)."""
        verified, chain_length = self.tracker.verified, self.net.CHAIN_LENGTH
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

    def _best_tail(self) -> tuple[int | None, bool]:
        verified = self.tracker.verified
        decorated: list[tuple[tuple[int, int, float], tuple[int, int], int | None]] = []
        for tail, heads in verified.tails.items():
            head = max(heads, key=lambda h: (verified.get_work(h), h))
            decorated.append((_score_key(self.tail_score(head)), _hash_key(tail), tail))
        return max(decorated)[2] if decorated else None, bool(decorated)

    # --- §5 heads and punishment -------------------------------------------------------

    def _rank_heads(self, best_tail: int | None, punish: Callable[[int], int]
                    ) -> tuple[list[tuple[HeadKey, int]], list[tuple[tuple[int, float, int], int]]]:
        """([jt] decorated heads, traditional ranking), both sorted ascending."""
        verified, items = self.tracker.verified, self.tracker.items
        decorated: list[tuple[HeadKey, int]] = []
        traditional: list[tuple[tuple[int, float, int], int]] = []
        for head in verified.tails[best_tail]:
            share = items[head]
            older = verified.get_nth_parent_hash(head, min(RECENT_SHARES, verified.get_height(head)))
            work5 = verified.get_work(older)
            punished = punish(head)
            decorated.append(((work5 - min(punished, 1) * share.work, -punished, -share.time_seen), head))
            traditional.append(((work5, -share.time_seen, -punished), head))
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
        if memo is None or not memo.holds(self.tracker, self.rel_height):
            memo = self._evaluate()
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

    def _evaluate(self) -> '_Memo':
        """The pass itself, up to the `now`-dependent filter of the desired parents."""
        tracker = self.tracker
        self._memo = None
        self._verify_calls = 0
        self._heights_read = []
        self._memo_safe = self._default_punish
        desired: list[DesiredEntry] = []
        failed: set[int] = set()
        bad = self._verify_heads(desired, failed)
        bad_peers, removed = self._remove_bad(bad)
        self._extend_verified(desired, failed)

        punish_cache: dict[int, int] = {}

        def punish(share_hash: int) -> int:
            value = punish_cache.get(share_hash)
            if value is None:
                share = tracker.items[share_hash]
                if share.VERSION < FIRST_ADDRESS_VERSION:
                    self._memo_safe = False   # its punishment follows the known transactions
                value = punish_cache[share_hash] = self.punish_fn(share)
            return value

        best_tail, any_tail = self._best_tail()
        decorated_heads, traditional = self._rank_heads(best_tail, punish) if any_tail else ([], [])
        best = decorated_heads[-1][1] if decorated_heads else None
        punish_aggressively = bool(traditional) and traditional[-1][0][2] != 0
        if best is not None:
            best = self._apply_punishment(best, punish)
        memo = _Memo(tracker, self._heights_read, best, desired, decorated_heads, bad_peers,
                     punish_aggressively, removed)
        if self._memo_safe and not failed and not removed:
            self._memo = memo
        return memo

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


# --- §6 pruning --------------------------------------------------------------------------

#: seconds subtracted from earliest_head_prune's answer: a prune that may be due runs in full, however
#: the float arithmetic of `now - HEAD_MIN_AGE` rounds
PRUNE_TIME_MARGIN = 1.0


def earliest_head_prune(tracker: ShareTracker, decorated_heads: list[tuple[HeadKey, int]]) -> float:
    """The earliest `now` at which prune() could eat a head of the tracker as it is: the time each head
    outside the top KEEP_TOP_HEADS passes HEAD_MIN_AGE (and, unverified, its tail's newest child passes
    TAIL_CHILDREN_MIN_AGE). Until then, and while the tracker does not change, a prune that removed
    nothing removes nothing again: its second part (the oldest shares of long chains) reads no time."""
    keep = {head for _key, head in decorated_heads[-KEEP_TOP_HEADS:]}
    items, verified = tracker.items, tracker.verified.items
    earliest = float('inf')
    for head, tail in tracker.heads.items():
        if head in keep:
            continue
        due = items[head].time_seen + HEAD_MIN_AGE
        if head not in verified:
            due = max(due, max(items[child].time_seen for child in tracker.reverse[tail]) + TAIL_CHILDREN_MIN_AGE)
        earliest = min(earliest, due)
    return earliest

def prune(tracker: ShareTracker, decorated_heads: list[tuple[HeadKey, int]], now: float, net: Net) -> list[int]:
    """Eat stale heads, then drop the oldest shares of long chains. Returns the removed
    hashes (so the store can forget them); the verified subset follows automatically."""
    removed: list[int] = []
    keep = {head for _key, head in decorated_heads[-KEEP_TOP_HEADS:]}
    items = tracker.items
    for _ in range(PRUNE_PASSES):
        doomed: list[int] = []
        for head, tail in tracker.heads.items():
            if head in keep or items[head].time_seen > now - HEAD_MIN_AGE:
                continue
            if head not in tracker.verified.items and max(
                    items[child].time_seen for child in tracker.reverse[tail]) > now - TAIL_CHILDREN_MIN_AGE:
                continue  # its missing parents may still be on their way
            doomed.append(head)
        if not doomed:
            break
        for head in doomed:
            tracker.remove(head)
            removed.append(head)

    keep_height = 2 * net.CHAIN_LENGTH + 10
    # no chain reaches keep_height with fewer shares than that in all (until a node holds that many)
    for _ in range(PRUNE_PASSES if len(items) >= keep_height else 0):
        doomed = []
        for tail, heads in tracker.tails.items():
            if min(tracker.get_height(head) for head in heads) >= keep_height:
                doomed.extend(tracker.reverse[tail])
        if not doomed:
            break
        for oldest in doomed:
            tracker.remove(oldest)
            removed.append(oldest)
    return removed
