"""Events and observable values shared by the rooms of the node.

Event (watch / unwatch / happened) is defined in p2pool.bitcoin.events; Variable
is a value whose `changed` Event fires when it is set to something different.
"""
from typing import Any

from p2pool.bitcoin.events import Event

__all__ = ['Event', 'Variable']


class Variable:
    """A value with a `changed` Event fired when it is set to something different."""

    def __init__(self, value: Any = None, name: str = 'variable') -> None:
        self.value: Any = value
        self.changed = Event(name)

    def set(self, value: Any) -> None:
        if value != self.value:
            self.value = value
            self.changed.happened(value)
