"""The typed contracts of the P2P room: the prose interfaces of protocol.py and peerset.py as
typing.Protocol classes, so that mypy holds the node, the sharechain and the test doubles to them.

PeerNode   what a PeerConnection needs of its node ("The node interface" in protocol.py);
           peerset.P2PNode is the real one.
PeerChain  what P2PNode, ShareSync and TxRelay need of the running sharechain;
           p2pool.sharechain.chain.ShareChain is the real one.

A peer is passed as Any: the connection type lives in protocol.py, which imports this module.
"""
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from p2pool.bitcoin.txpool import KnownTxPool
from p2pool.events import Event, Variable
from p2pool.sharechain.share import Share, ShareTracker

__all__ = ['PeerChain', 'PeerNode']


@runtime_checkable
class PeerNode(Protocol):
    """The node side of every PeerConnection (p2p.md §3-§9; see protocol.py for each member)."""

    @property
    def nonce(self) -> int:
        """Our random 64-bit nonce, fixed per node start."""

    @property
    def minimum_protocol_version(self) -> int:
        """Peers announcing less are refused (new handshakes only)."""

    @property
    def known_txs(self) -> Mapping[int, Any]:
        """tx key -> transaction dict (the known pool, §5); only .get(key) is used."""

    def best_share_hash(self) -> int | None: ...

    def peer_connected(self, peer: Any) -> bool: ...

    def peer_disconnected(self, peer: Any) -> None: ...

    def report_misbehaviour(self, peer: Any, kind: str, reason: str) -> None: ...

    def handle_shares(self, peer: Any, wrappers: list[dict[str, Any]]) -> None: ...

    def handle_sharereq(self, peer: Any, hashes: list[int], parents: int, stops: list[int]) -> list[Any]: ...

    def handle_bestblock(self, peer: Any, header: dict[str, Any]) -> None: ...

    def got_addrme(self, peer: Any, port: int) -> None: ...

    def got_addrs(self, peer: Any, records: list[dict[str, Any]]) -> None: ...

    def get_good_peers(self, count: int) -> list[dict[str, Any]]: ...

    def add_known_txs(self, peer: Any, txs: Mapping[int, Any]) -> None: ...


@runtime_checkable
class PeerChain(Protocol):
    """The sharechain as the P2P room sees it (ShareChain's attributes and events, chain.py)."""

    @property
    def net(self) -> Any:
        """The config.Network."""

    @property
    def tracker(self) -> ShareTracker: ...

    @property
    def best_share_hash(self) -> Variable:
        """Variable(int | None): .changed fires with the new best hash."""

    @property
    def minimum_protocol_version(self) -> Variable:
        """Variable(int), raised by version voting."""

    @property
    def known_txs(self) -> KnownTxPool: ...

    @property
    def desired(self) -> list[tuple[Any, int]]:
        """[(peer_addr, share_hash)] parents to fetch."""

    @property
    def desired_changed(self) -> Event: ...

    @property
    def bad_peer(self) -> Event:
        """(peer_addr, reason): a peer sent a share that failed verification."""

    @property
    def block_found_by_peer(self) -> Event: ...

    @property
    def local_block_solution(self) -> Event: ...

    @property
    def rel_height(self) -> Callable[[int | None], int]: ...

    def parse_shares(self, wrappers: Sequence[bytes | dict[str, Any]], peer_addr: Any = None) -> list[Share]: ...

    def add_shares(self, shares: Iterable[Share], peer_addr: Any = None, think: bool = True) -> list[Share]: ...

    def get_shares_for_request(self, hashes: Iterable[int], parents: int, stops: Iterable[int]) -> Sequence[Share]: ...
