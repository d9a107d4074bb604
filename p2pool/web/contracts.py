"""The typed contract of the web room: the node facade of web/api.py ("THE NODE FACADE") as a
typing.Protocol, so that mypy holds p2pool.app.views.WebNodeView and the test nodes
(p2pool.testing.web_testnode.FixedNode) to it.

The optional members (template_latency, payout_history, payout_totals, block_state) are read
with getattr and are not part of the Protocol.
"""
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from p2pool.sharechain.share import ShareTracker
from p2pool.sharechain.stats import StaleAccounting

__all__ = ['WebNode']


@runtime_checkable
class WebNode(Protocol):
    """Everything the web pages and the console status know about the running node."""

    @property
    def net(self) -> Any:
        """The config.Network."""

    @property
    def tracker(self) -> ShareTracker: ...

    @property
    def start_time(self) -> float: ...

    @property
    def fee(self) -> float: ...

    @property
    def donation(self) -> float: ...

    @property
    def payout_address(self) -> str | None: ...

    @property
    def payout_addresses(self) -> list[str]: ...

    @property
    def stale_accounting(self) -> StaleAccounting: ...

    @property
    def history_store(self) -> Any:
        """The node's ShareStore, or None to keep graph history in memory."""

    def best_share_hash(self) -> int | None: ...

    def current_work(self) -> Mapping[str, Any] | None: ...

    def peers(self) -> Iterable[Any]:
        """PeerInfo records (web/api.py), one per connected peer."""

    def local_stats(self) -> Any:
        """A LocalStats (web/api.py) of this run."""
