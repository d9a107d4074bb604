"""Share and pseudoshare targets (worker.md §4) and the rate bookkeeping they depend on.

Pure arithmetic, no reactor: the bridge and the Stratum server pass the clock in.

* RateMonitor   a sliding window of (time, datum) records: local pseudoshare rates
                per worker and per payee over the last 10 minutes.
* LocalHashRate the last 50 pseudoshares; the node's hash rate H (§4.1 step 2).
* share_target / pseudoshare_target   §4.1 and §4.2 ([jt] variants).
* Vardiff       the per-connection Stratum difficulty of §4.3, plus the extensions
                the Stratum server supports on top of it: a suggested starting
                difficulty (mining.suggest_difficulty), a miner's minimum
                difficulty (mining.configure "minimum-difficulty"), and a grace
                window in which work at the previous difficulty is still accepted.
"""
from collections import deque
from typing import Any

from p2pool.bitcoin.data import (
    average_attempts_to_target, difficulty_to_target, target_to_average_attempts)

MAX_TARGET = 2**256 - 1
RECENT_PSEUDOSHARES = 50
OWN_SHARE_FRACTION = 0.0167     # the node's own shares: about 1.67 % of all shares (§4.1)
VARDIFF_WINDOW = 12
VARDIFF_GRACE_SECONDS = 10.0


def clip(value, low, high) -> Any:
    return low if value < low else high if value > high else value


class RateMonitor:
    """Datums recorded over the last `max_lookback` seconds.

    As in the original, the very first datum only starts the clock: a rate is the
    work recorded *after* the first datum divided by the time since it.
    """

    def __init__(self, max_lookback) -> None:
        self.max_lookback = max_lookback
        self.datums: deque[Any] = deque()
        self.first_timestamp = None

    def _prune(self, now) -> None:
        start = now - self.max_lookback
        datums = self.datums
        while datums and datums[0][0] <= start:
            datums.popleft()

    def add_datum(self, now, datum) -> None:
        self._prune(now)
        if self.first_timestamp is None:
            self.first_timestamp = now
        else:
            self.datums.append((now, datum))

    def get_datums_in_last(self, now, dt=None) -> tuple[list[dict[str, Any]], float]:
        """(datums newer than now - dt, the effective time span) with dt <= max_lookback."""
        dt = self.max_lookback if dt is None else min(dt, self.max_lookback)
        self._prune(now)
        datums = [datum for timestamp, datum in self.datums if timestamp > now - dt]
        span = min(dt, now - self.first_timestamp) if self.first_timestamp is not None else 0
        return datums, span

    def rates(self, now, key, dt=None) -> tuple[dict[Any, float], dict[Any, float]]:
        """{datum[key]: work per second} and {datum[key]: dead work per second}."""
        datums, span = self.get_datums_in_last(now, dt)
        rates: dict[Any, float] = {}
        dead_rates: dict[Any, float] = {}
        if span <= 0:
            return rates, dead_rates
        for datum in datums:
            name = datum[key]
            rates[name] = rates.get(name, 0) + datum['work'] / span
            if datum.get('dead'):
                dead_rates[name] = dead_rates.get(name, 0) + datum['work'] / span
        return rates, dead_rates


class LocalHashRate:
    """The newest 50 pseudoshares (time, work); the node's hash rate H once 50 are known."""

    def __init__(self) -> None:
        self.recent: deque[tuple[float, int]] = deque(maxlen=RECENT_PSEUDOSHARES)

    def add(self, now, work) -> None:
        self.recent.append((now, work))

    def hash_rate(self) -> float | None:
        """H = floor(work of the newest 49 / their time span), or None (§4.1 step 2)."""
        recent = self.recent
        if len(recent) < RECENT_PSEUDOSHARES:
            return None
        span = recent[-1][0] - recent[0][0]
        if span <= 0:
            return None
        rate = sum(work for _, work in list(recent)[1:]) // span
        return rate if rate > 0 else None


def dust_target(block_target, spread, dust_threshold, subsidy) -> int:
    """The target at which one share is worth about the dust threshold (§4.1 step 4)."""
    if subsidy <= 0:
        return MAX_TARGET
    return average_attempts_to_target(
        target_to_average_attempts(block_target) * spread * dust_threshold / subsidy)


def share_target(net, fixed_target, hash_rate, punish_aggressively, expected_payout, block_target, subsidy) -> int:
    """desired_share_target of §4.1 ([jt]); `expected_payout` is None when step 4 does not apply."""
    if fixed_target is not None:
        return fixed_target
    target = MAX_TARGET
    if hash_rate:
        target = min(target, average_attempts_to_target(hash_rate * net.SHARE_PERIOD / OWN_SHARE_FRACTION))
    if punish_aggressively:
        target = difficulty_to_target(1.0)
    if expected_payout is not None and expected_payout < net.PARENT.DUST_THRESHOLD:
        target = min(target, dust_target(block_target, net.SPREAD, net.PARENT.DUST_THRESHOLD, subsidy))
    return target


def pseudoshare_target(net, fixed_target, hash_rate, block_target, subsidy, min_share_target, aux_targets=()) -> int:
    """The work record's share_target of §4.2 ([jt]: about 10 pseudoshares a second node-wide)."""
    if fixed_target is not None:
        target = fixed_target
    else:
        target = MAX_TARGET
        if hash_rate:
            target = min(target, average_attempts_to_target(hash_rate / 10))
        else:
            target = min(target, 3000 * dust_target(block_target, net.SPREAD, net.PARENT.DUST_THRESHOLD, subsidy))
    target = max(target, min_share_target)
    for aux_target in aux_targets:
        target = max(target, aux_target)
    low, high = net.PARENT.SANE_TARGET_RANGE
    return clip(target, low, high)


def fixed_target_floor(block_target, min_share_target) -> int:
    """The easiest a fixed (+D) pseudoshare target gets: the job target is max(fixed, this).

    The spec's max(fixed, block target): never hide a block behind a pseudoshare target.
    Where blocks are easier than shares (regtest) the share target bounds it instead, or
    every hash would come back as a pseudoshare."""
    return min(block_target, min_share_target)


class Vardiff:
    """The pseudoshare target of one Stratum connection (§4.3, [jt]).

    share_rate: seconds per pseudoshare wanted (`--share-rate`).
    fixed_target: the username's `+D` target (never adjusted), or None.
    """

    def __init__(self, share_rate, sane_range, fixed_target=None, grace=VARDIFF_GRACE_SECONDS) -> None:
        if share_rate <= 0:
            raise ValueError('the Stratum share rate must be positive')
        self.share_rate = share_rate
        self.sane_low, self.sane_high = sane_range
        self.fixed_target = fixed_target
        self.grace = grace
        self.target: Any = None
        self.suggested_target = None      # mining.suggest_difficulty, used for the first job
        self.ceiling = None               # mining.configure minimum-difficulty: never easier than this
        self.recent: list[Any] = []
        self.previous_target = None
        self.grace_until = 0.0

    def set_fixed(self, fixed_target) -> None:
        self.fixed_target = fixed_target
        self.recent = []

    def suggest(self, target) -> None:
        """A miner's suggested starting target: taken at once, vardiff adjusts from there."""
        self.suggested_target = clip(target, self.sane_low, self.sane_high)
        if self.fixed_target is None and self.target is not None:
            self._change(self.suggested_target, None)

    def set_minimum_difficulty_target(self, target) -> None:
        self.ceiling = target

    def job_target(self, share_target, min_share_target, block_target) -> int:
        """The target of the next job, from the work record's share_target and min_share_target."""
        if self.fixed_target is not None:
            return max(self.fixed_target, fixed_target_floor(block_target, min_share_target))
        if self.target is None:
            self.target = self.suggested_target if self.suggested_target is not None else share_target
        target = self.target
        if self.ceiling is not None:
            target = min(target, self.ceiling)
        # never harder than a share: a share the miner does not submit is lost
        self.target = max(min_share_target, target)
        return self.target

    def record_submission(self, now, min_share_target) -> bool:
        """Count one accepted pseudoshare; True when the target changed (send new work at once)."""
        if self.fixed_target is not None or self.target is None:
            return False
        recent = self.recent
        recent.append(now)
        if len(recent) > VARDIFF_WINDOW or now - recent[0] > 10 * len(recent) * self.share_rate:
            oldest = recent.pop(0)
            factor = clip((now - oldest) / (len(recent) * self.share_rate), 0.5, 2)
            target = clip(int(self.target * factor + 0.5), self.sane_low, self.sane_high)
            if self.ceiling is not None:
                target = min(target, self.ceiling)
            self._change(max(min_share_target, target), now)
            self.recent = [now]
            return True
        return False

    def _change(self, target, now) -> None:
        if target != self.target and now is not None:
            self.previous_target, self.grace_until = self.target, now + self.grace
        self.target = target

    def acceptance_target(self, job_target, now) -> int:
        """The target a submission for a job with `job_target` must meet (grace: the easier one)."""
        if self.previous_target is not None and now < self.grace_until:
            return max(job_target, self.previous_target)
        return job_target
