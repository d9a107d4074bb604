"""The typed contract of the work room: what WorkBridge needs of the running node (the `node`
of the wiring contract in bridge.py) as a typing.Protocol, so that mypy holds
p2pool.app.views.WorkNodeView and the test doubles to it.
"""
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ['WorkNode']


@runtime_checkable
class WorkNode(Protocol):
    """The node as the work bridge sees it (worker.md §1.4, §2)."""

    @property
    def best_share_hash(self) -> int | None:
        """The current best share's hash, or None before there is a chain."""

    def peer_count(self) -> int:
        """Connected P2Pool peers (no work is handed out without one, except on a lone node)."""

    def watch_new_work(self, bump: Callable[[str], object]) -> None:
        """Call bump(reason) when the best share changes or "punish aggressively" turns on;
        template changes are watched by the bridge itself."""
