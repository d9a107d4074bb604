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

log = logging.getLogger(__name__)


class Event:
    def __init__(self, name='event'):
        self.name = name
        self._watchers = []
        self.times = 0

    def watch(self, callback):
        """Call `callback(*args)` on every happening; returns it so it can be unwatched."""
        self._watchers.append(callback)
        return callback

    def unwatch(self, callback):
        try:
            self._watchers.remove(callback)
        except ValueError:
            pass

    def happened(self, *args):
        self.times += 1
        for callback in list(self._watchers):
            try:
                callback(*args)
            except Exception:
                log.exception('error in a watcher of %s', self.name)

    def __len__(self):
        return len(self._watchers)
