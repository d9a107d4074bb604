"""PeerSettings: the per-network constants and local policy every peer connection of a node reads.

Kept apart from p2p/protocol.py so the connection's code and the knobs an operator, a test or the simulator turns
can each be read in one sitting.
"""
import dataclasses
from typing import Any

import p2pool
from p2pool.bitcoin.hashes import sha256d_pow
from p2pool.p2p import messages
from p2pool.p2p.peerlimits import MESSAGE_SIZE_LIMITS


@dataclasses.dataclass
class PeerSettings:
    """Per-network constants and local policy shared by every connection of a node."""

    prefix: bytes                                  # the sharechain network's PREFIX
    protocol_version: int = 3501
    sub_version: bytes = ('p2pool-py/%s' % p2pool.__version__).encode()
    max_payload_size: int = messages.MAX_PAYLOAD_SIZE
    pow_func: object = sha256d_pow                 # header bytes -> PoW hash (int)
    handshake_timeout: float = 10.0
    idle_timeout: float = 100.0
    ping_interval_mean: float = 100.0
    request_timeout: float = 15.0
    max_remote_tx_hashes: int = 10_000             # §4.10 cap of a peer's have_tx view
    max_remembered_txs_size: int = 25_000_000      # §4.12 ([jt]; [orig] 2 500 000)
    latency_cache_seconds: float = 20.0            # §5: txs we dropped stay referencable
    # Rate limits as (burst, per second). Legitimate peers stay far below them: they
    # relay <= 5 shares per best-share change and download with one request at a time.
    messages_limit: tuple = (5000, 1000.0)         # frames of any kind
    sharereq_limit: tuple = (200, 20.0)            # sharereq messages
    shares_limit: tuple = (1000, 100.0)            # shares pushed unsolicited
    addrs_limit: tuple = (1000, 10.0)              # address records in addrs
    getaddrs_limit: tuple = (20, 0.2)              # getaddrs messages
    flood_tolerance: int = 10                      # refused messages before FLOODING
    # Bytes of shares in sharereply answers to one peer: (burst, per second). A chain of
    # 17,280 shares of ~400 bytes downloads in about 10 s from one peer.
    sharereply_budget: tuple = (4_000_000, 500_000.0)
    # Largest payload accepted per command; sharereply and remember_tx are sized at run time.
    message_size_limits: dict = dataclasses.field(default_factory=lambda: dict(MESSAGE_SIZE_LIMITS))
    # Frame checksums and payload decoding (pure functions of the payload): the simulator gives
    # memoised ones shared by all its nodes (p2pool/sim/caches.py); handlers only read the fields.
    checksum: Any = messages.checksum
    decode_payload: Any = messages.decode_payload
    # (record key, encode) -> the frames of an `addrs` message forwarding one address record (P2PNode,
    # p2p.md §4.4): the simulator's memo, shared by its nodes, which forward the same records hop by
    # hop; None: every forward is encoded
    addrs_frames: Any = None
