"""Graph history: binned time series behind `/web/graph_data/<source>/<view>` (web.md §2.4).

Every source is recorded at five resolutions ("views"): the last hour in 150 bins,
the last day/week/month/year in 300 bins each. A datum lands in the bin covering its
time; bins are aligned to multiples of the bin width since the epoch, so a restart
continues the same bins.

Two kinds of source:

* rate ("not gauge"): values are summed per bin and reported per second of the
  bin's width (e.g. pseudoshare work -> hash rate);
* gauge: values are averaged over the samples in the bin (e.g. peers every 5 s).

Multi-valued sources record {key: value} objects; a response keeps the
`keep` largest keys of each bin. Everything here is pure: the caller passes the time.
`GraphHistory.snapshot()` / `restore()` give a JSON-able state for persistence
(p2pool.web.service saves it in the node's database).
"""
import math
from dataclasses import dataclass
from typing import Any

__all__ = ['VIEWS', 'SOURCES', 'StreamKind', 'DataView', 'GraphHistory', 'UnknownGraph']

#: view name -> (seconds covered, number of bins)
VIEWS = {
    'last_hour': (3600, 150),
    'last_day': (86400, 300),
    'last_week': (604800, 300),
    'last_month': (2592000, 300),
    'last_year': (31557600, 300),
}

#: key under which single-valued sources keep their value inside a bin
_SINGLE = 'null'


@dataclass(frozen=True)
class StreamKind:
    """How a source is binned and reported.

    gauge: average of samples (else: a rate, sum per second of bin width).
    multi: values are {key: number} objects (else a single number).
    keep: a response keeps this many largest keys per bin.
    missing_is_zero: for multi-valued gauges, a key absent from a sample counts as 0 in
        that sample (the bin average divides by all samples of the bin) and an empty
        bin reports null; otherwise each key is averaged over its own samples.
    """
    gauge: bool
    multi: bool = False
    keep: int = 20
    missing_is_zero: bool = False

    @property
    def default(self) -> float | None:
        """The value a front-end should assume for a key missing from a bin."""
        if self.gauge and not self.missing_is_zero:
            return None
        return 0


SOURCES = {
    'local_hash_rate': StreamKind(gauge=False),
    'local_dead_hash_rate': StreamKind(gauge=False),
    'local_share_hash_rates': StreamKind(gauge=False, multi=True),
    'pool_rates': StreamKind(gauge=True, multi=True, missing_is_zero=True),
    'current_payout': StreamKind(gauge=True),
    'current_payouts': StreamKind(gauge=True, multi=True),
    'peers': StreamKind(gauge=True, multi=True, missing_is_zero=True),
    'miner_hash_rates': StreamKind(gauge=False, multi=True, keep=10000),
    'miner_dead_hash_rates': StreamKind(gauge=False, multi=True, keep=10000),
    'desired_version_rates': StreamKind(gauge=True, multi=True, missing_is_zero=True),
    'traffic_rate': StreamKind(gauge=False, multi=True),
    'getwork_latency': StreamKind(gauge=True),
    'memory_usage': StreamKind(gauge=True),
}


class UnknownGraph(KeyError):
    """An unknown source or view name (the web layer answers 404)."""

    def __str__(self) -> str:
        return self.args[0] if self.args else 'unknown graph'


def _finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class DataView:
    """One resolution of one source: `bin_count` bins of `bin_width` seconds, newest first.

    A bin is [samples, {key: [total, count]}]: `samples` counts add() calls that
    reached the bin (the denominator of missing_is_zero gauges).
    """

    def __init__(self, bin_width, bin_count, last_bin_end=0.0, bins=None) -> None:
        self.bin_width = bin_width
        self.bin_count = bin_count
        self.last_bin_end = last_bin_end
        self.bins: list[list[Any]] = bins if bins is not None else [[0, {}] for _ in range(bin_count)]

    def _shift_to(self, t):
        """Bins and end time after moving the newest bin forward to cover time t."""
        shift = max(0, math.ceil((t - self.last_bin_end) / self.bin_width))
        if shift == 0:
            return self.bins, self.last_bin_end
        if shift >= self.bin_count:
            bins = [[0, {}] for _ in range(self.bin_count)]
        else:
            bins = [[0, {}] for _ in range(shift)] + self.bins[:self.bin_count - shift]
        return bins, self.last_bin_end + shift * self.bin_width

    def add(self, t, values) -> None:
        """Add {key: number} at time t (older than the view's window: ignored)."""
        self.bins, self.last_bin_end = self._shift_to(t)
        index = math.floor((self.last_bin_end - t) / self.bin_width)
        if index >= self.bin_count:
            return
        bin_ = self.bins[index]
        bin_[0] += 1
        for key, value in values.items():
            total_count = bin_[1].get(key)
            if total_count is None:
                bin_[1][key] = [value, 1]
            else:
                total_count[0] += value
                total_count[1] += 1

    def data(self, now, kind) -> list[list[Any]]:
        """[[center_time, value, width, default], ...] newest first, as served (web.md §2.4)."""
        bins, last_bin_end = self._shift_to(now)
        out = []
        default = kind.default
        for index, (samples, entries) in enumerate(bins):
            left = last_bin_end - self.bin_width * (index + 1)
            right = min(now, last_bin_end - self.bin_width * index)
            width = right - left
            value = self._bin_value(samples, entries, width, kind)
            if kind.multi:
                if value is not None and len(value) > kind.keep:
                    largest = sorted(value.items(), key=lambda item: (item[1] is not None, item[1] or 0),
                                     reverse=True)[:kind.keep]
                    value = dict(largest)
            else:
                value = None if value is None else value.get(_SINGLE, default)
            out.append([(left + right) / 2, value, width, default])
        return out

    @staticmethod
    def _bin_value(samples, entries, width, kind):
        if kind.gauge and kind.missing_is_zero:
            if samples == 0:
                return None
            return {key: total / samples for key, (total, _count) in entries.items()}
        if kind.gauge:
            return {key: total / count for key, (total, count) in entries.items()}
        if width <= 0:
            return None
        return {key: total / width for key, (total, _count) in entries.items()}

    def state(self) -> dict[str, Any]:
        """JSON-able copy (stored by the service, restored with from_state)."""
        return {'last_bin_end': self.last_bin_end, 'bin_width': self.bin_width,
                'bins': [[samples, {key: list(pair) for key, pair in entries.items()}]
                         for samples, entries in self.bins]}

    @classmethod
    def from_state(cls, state, bin_width, bin_count) -> 'DataView | None':
        """Rebuild from state(); None if it does not fit this view (then start empty)."""
        try:
            if state['bin_width'] != bin_width:
                return None
            last_bin_end = float(state['last_bin_end'])
            bins = []
            for samples, entries in state['bins'][:bin_count]:
                bins.append([int(samples), {str(key): [float(total), int(count)]
                                            for key, (total, count) in entries.items()}])
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        if not math.isfinite(last_bin_end):
            return None
        bins.extend([0, {}] for _ in range(bin_count - len(bins)))
        return cls(bin_width, bin_count, last_bin_end, bins)


class GraphHistory:
    """All sources at all views. add() from the node's events; graph_data() for the API."""

    def __init__(self, sources=None, views=None) -> None:
        self.sources = dict(SOURCES if sources is None else sources)
        self.views = dict(VIEWS if views is None else views)
        self.streams = {source: {view: DataView(seconds / count, count)
                                 for view, (seconds, count) in self.views.items()}
                        for source in self.sources}

    def add(self, source, t, value) -> None:
        """Record `value` (a number, or {key: number} for multi sources) at time t.

        Non-finite numbers are dropped (a NaN would poison a whole bin).
        """
        kind = self.sources[source]
        if kind.multi:
            values = {str(key): number for key, number in value.items() if _finite(number)}
            if not values and not kind.missing_is_zero:
                return
        else:
            if not _finite(value):
                return
            values = {_SINGLE: value}
        for view in self.streams[source].values():
            view.add(t, values)

    def graph_data(self, source, view, now) -> list[list[Any]]:
        """The bins of web.md §2.4; UnknownGraph for a bad source or view name."""
        if source not in self.sources:
            raise UnknownGraph('unknown graph source %r' % (source,))
        if view not in self.views:
            raise UnknownGraph('unknown graph view %r' % (view,))
        return self.streams[source][view].data(now, self.sources[source])

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """{source: {view: state}} (JSON-able deep copy)."""
        return {source: {view: data_view.state() for view, data_view in views.items()}
                for source, views in self.streams.items()}

    def restore(self, snapshot) -> int:
        """Load states saved by snapshot(); unknown or damaged entries are skipped. Returns
        how many views were restored."""
        restored = 0
        for source, views in snapshot.items():
            if source not in self.streams or not isinstance(views, dict):
                continue
            for view, state in views.items():
                if view not in self.views:
                    continue
                seconds, count = self.views[view]
                data_view = DataView.from_state(state, seconds / count, count)
                if data_view is not None:
                    self.streams[source][view] = data_view
                    restored += 1
        return restored
