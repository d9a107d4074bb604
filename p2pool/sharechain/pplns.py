"""PPLNS payout weights (shares.md §11.4) and the payout views built on them (§15).

get_cumulative_weights walks the chain from a start share backwards, giving each
payee the work of its shares (minus donations) until `max_shares` shares or
`desired_weight` work are reached; the share that crosses the weight limit
counts partially. A syncing node calls it once per verified share with windows
of up to 8640 shares, so results come from a small per-tracker cache of
sliding windows: a child's window differs from its parent's by one share at the
top and a few at the bottom, and moving a window costs only those differences.

Shares are read through `tracker.items` (hash -> share) and their attributes
`hash`, `previous_hash`, `work` (attempts of the share's own target),
`donation` and `payout_address` (the [jt] payee key).
"""
import weakref
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol

from p2pool.bitcoin.address import donation_address
from p2pool.bitcoin.data import target_to_average_attempts
from p2pool.sharechain.tracker import Tracker


class PaidShare(Protocol):
    """What a PPLNS window reads of a share."""

    @property
    def hash(self) -> int: ...

    @property
    def previous_hash(self) -> int | None: ...

    @property
    def work(self) -> int: ...

    @property
    def donation(self) -> int: ...

    @property
    def payout_address(self) -> str: ...


Items = Mapping[int, PaidShare]
#: (weights {payee address: weight}, total, donation_total)
Weights = tuple[dict[str, int], int, int]

#: windows kept per tracker; moving a window is cheap, building one walks max_shares shares
WINDOWS_PER_TRACKER = 4
#: the farthest a new start may be from a cached window (generations) before rebuilding
MAX_WINDOW_MOVE = 64
_FULL = 65535


class _Window:
    """Shares counted in full for one start hash, newest first, with their summed weights."""

    __slots__ = ('start', 'shares', 'members', 'weights', 'total', 'donation_total',
                 'max_shares', 'desired_weight')

    def __init__(self, start: int) -> None:
        self.start = start
        self.shares: deque[PaidShare] = deque()  # shares[0] is the start share, shares[-1] the oldest counted
        self.members: set[int] = set()           # hashes in `shares`
        self.weights: dict[str, int] = {}        # payee key -> weight of the fully counted shares (never 0)
        self.total = 0             # sum of work*65535 over `shares`
        self.donation_total = 0
        self.max_shares: int | None = None
        self.desired_weight: int | None = None

    def _add(self, share: PaidShare) -> None:
        work, donation = share.work, share.donation
        weight = work * (_FULL - donation)
        if weight:
            key = share.payout_address
            self.weights[key] = self.weights.get(key, 0) + weight
        self.donation_total += work * donation
        self.total += work * _FULL
        self.members.add(share.hash)

    def _remove(self, share: PaidShare) -> None:
        work, donation = share.work, share.donation
        weight = work * (_FULL - donation)
        if weight:
            key = share.payout_address
            left = self.weights[key] - weight
            if left:
                self.weights[key] = left
            else:
                del self.weights[key]
        self.donation_total -= work * donation
        self.total -= work * _FULL
        self.members.discard(share.hash)

    def _next_older(self, items: Items) -> PaidShare | None:
        """The share below the counted ones (the partial candidate), or None."""
        below = self.shares[-1].previous_hash if self.shares else self.start
        return items.get(below) if below is not None else None

    def fit(self, items: Items, max_shares: int, desired_weight: int) -> None:
        """Drop or add shares at the bottom until the window matches the limits."""
        shares = self.shares
        while shares and (len(shares) > max_shares or self.total > desired_weight):
            self._remove(shares.pop())
        while len(shares) < max_shares and self.total < desired_weight:
            share = self._next_older(items)
            if share is None or self.total + share.work * _FULL > desired_weight:
                break
            shares.append(share)
            self._add(share)
        self.max_shares, self.desired_weight = max_shares, desired_weight

    def move_to(self, items: Items, new_start: int) -> bool:
        """Re-centre the window on `new_start`; False if it is not within reach of this window."""
        path: list[PaidShare] = []
        cursor: int | None = new_start
        while cursor not in self.members:
            if len(path) >= MAX_WINDOW_MOVE or cursor is None:
                return False
            share = items.get(cursor)
            if share is None:
                return False
            path.append(share)
            cursor = share.previous_hash
        shares = self.shares
        while shares[0].hash != cursor:
            self._remove(shares.popleft())
        for share in reversed(path):
            shares.appendleft(share)
            self._add(share)
        self.start = new_start
        return True

    def result(self, items: Items, max_shares: int, desired_weight: int) -> Weights:
        """(weights, total, donation_total) including the partially counted crossing share."""
        weights = dict(self.weights)
        total, donation_total = self.total, self.donation_total
        if len(self.shares) < max_shares and total < desired_weight:
            share = self._next_older(items)
            if share is not None:
                portion = (desired_weight - total) // _FULL
                weight = portion * (_FULL - share.donation)
                if weight:
                    key = share.payout_address
                    weights[key] = weights.get(key, 0) + weight
                donation_total += portion * share.donation
                total = desired_weight
        return weights, total, donation_total


_caches: weakref.WeakKeyDictionary[Tracker[Any], list[_Window]] = weakref.WeakKeyDictionary()


def _windows_of(tracker: Tracker[Any]) -> list[_Window] | None:
    try:
        return _caches.setdefault(tracker, [])
    except TypeError:     # a tracker that cannot be weakly referenced: no caching
        return None


def get_cumulative_weights(tracker: Tracker[Any], start_hash: int | None, max_shares: int,
                           desired_weight: int) -> Weights:
    """PPLNS weights from `start_hash` backwards (shares.md §11.4).

    Returns (weights {payee address: weight}, total, donation_total) with
    total == sum(weights.values()) + donation_total; entries of weight 0 are
    left out. Shares missing from the tracker end the walk.
    """
    if start_hash is None or max_shares <= 0 or desired_weight <= 0:
        return {}, 0, 0
    items: Items = tracker.items
    windows = _windows_of(tracker)
    if windows is None:
        uncached = _Window(start_hash)
        uncached.fit(items, max_shares, desired_weight)
        return uncached.result(items, max_shares, desired_weight)
    window: _Window | None = None
    # Prefer a window built for the same number of shares so that the payout,
    # /users and verification windows do not keep resizing each other.
    candidates = sorted(range(len(windows)), key=lambda i: windows[i].max_shares != max_shares)
    for index in candidates:
        candidate = windows[index]
        if candidate.max_shares is None or abs(candidate.max_shares - max_shares) > MAX_WINDOW_MOVE \
                or not candidate.shares:
            continue
        if candidate.start == start_hash or candidate.move_to(items, start_hash):
            window = windows.pop(index)
            break
    if window is None:
        window = _Window(start_hash)
        if len(windows) >= WINDOWS_PER_TRACKER:
            windows.pop()
    window.fit(items, max_shares, desired_weight)
    windows.insert(0, window)
    return window.result(items, max_shares, desired_weight)


def clear_cache(tracker: Tracker[Any] | None = None) -> None:
    """Forget the cached windows (of one tracker, or of all)."""
    if tracker is None:
        _caches.clear()
    else:
        _caches.pop(tracker, None)


def pplns_desired_weight(block_target: int, net: Any) -> int:
    """65535 * SPREAD * attempts(block target): the window's work limit."""
    spread: int = net.SPREAD
    return _FULL * spread * target_to_average_attempts(block_target)


def current_payouts(tracker: Tracker[Any], best_hash: int | None, block_target: int, subsidy: int,
                    net: Any) -> dict[str, int]:
    """Expected payout of every address if the next block is found now (shares.md §15).

    Weights from the best share itself over min(height, REAL_CHAIN_LENGTH)
    shares; payout = subsidy * weight // total, the donation address gets the
    rest. No finder's fee. Returns {address: base units}.
    """
    donation = donation_address(net.PARENT)
    if best_hash is None:
        return {donation: subsidy}
    max_shares: int = min(tracker.get_height(best_hash), net.REAL_CHAIN_LENGTH)
    weights, total, _ = get_cumulative_weights(tracker, best_hash, max_shares,
                                               pplns_desired_weight(block_target, net))
    payouts: dict[str, int] = {}
    if total:
        for key, weight in weights.items():
            payouts[key] = subsidy * weight // total
    payouts[donation] = payouts.get(donation, 0) + subsidy - sum(payouts.values())
    return payouts


USERS_WINDOW = 720


def users_weights(tracker: Tracker[Any], best_hash: int | None) -> dict[str, float]:
    """{address: fraction of the weight} over the newest 720 shares (the /users view, §15)."""
    if best_hash is None:
        return {}
    max_shares = min(tracker.get_height(best_hash), USERS_WINDOW)
    weights, total, _ = get_cumulative_weights(tracker, best_hash, max_shares, _FULL * 2**256)
    if not total:
        return {}
    return {key: weight / total for key, weight in weights.items()}
