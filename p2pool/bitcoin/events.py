"""A tiny observer: the rooms of the node signal each other through Events.

    block_seen = Event('new block')
    block_seen.watch(lambda block_hash: refresh())
    block_seen.happened(block_hash)

A watcher that raises is logged and does not stop the others: one faulty
consumer (a web graph, a peer) must never break share relay or work updates.
It lives in the bitcoin package because that package imports nothing of p2pool
outside itself; everyone else takes it from p2pool.events.
"""
import logging
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

Watcher = TypeVar('Watcher', bound=Callable[..., object])


class Event:
    def __init__(self, name: str = 'event') -> None:
        self.name = name
        self._watchers: list[Callable[..., object]] = []
        self.times = 0

    def watch(self, callback: Watcher) -> Watcher:
        """Call `callback(*args)` on every happening; returns it so it can be unwatched."""
        self._watchers.append(callback)
        return callback

    def unwatch(self, callback: Callable[..., object]) -> None:
        try:
            self._watchers.remove(callback)
        except ValueError:
            pass

    def happened(self, *args: Any) -> None:
        self.times += 1
        if not self._watchers:
            return   # the common case of a counter nobody watches (p2p traffic, per message)
        for callback in list(self._watchers):
            try:
                callback(*args)
            except Exception:
                log.exception('error in a watcher of %s', self.name)

    def __len__(self) -> int:
        return len(self._watchers)
