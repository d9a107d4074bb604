"""File descriptors: the process limit and how many the worker port may take (issue 16, finding 1).

Every miner connection is a descriptor. With the soft RLIMIT_NOFILE often at 1,024, a flood of
idle stratum connections used to take them all, and then getblocktemplate, submitblock, new peers
and the web failed with `Too many open files`. At start the node raises the soft limit to the hard
one, and the worker port is capped below the limit so that descriptors stay free for:

    BASE_RESERVE        stdio, the log, the store (SQLite database, WAL, shared memory), the
                        data-directory lock, listening sockets, the reactor and thread-pool pipes
    BITCOIND_RESERVE    JSON-RPC connections (thread pool and long poll) and the P2P link
    peers               --max-conns incoming, --outgoing-conns, dials in progress and incoming
                        connections still in their handshake
    WEB_RESERVE         HTTP connections (dashboard, getwork) on top of the stratum cap

    limit = raise_file_limit()
    total = default_max_miner_conns(limit, max_conns=40, outgoing_conns=6)
"""
from __future__ import annotations

import resource

BASE_RESERVE = 64
BITCOIND_RESERVE = 32
WEB_RESERVE = 64
MIN_MINER_CONNS = 16
#: a soft limit to ask for when the hard limit is "unlimited" (Linux refuses RLIM_INFINITY)
UNLIMITED_FALLBACK = 1_048_576


def raise_file_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit; (limit before, limit now)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = UNLIMITED_FALLBACK if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        for target in (wanted, 65536):
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                break
            except (ValueError, OSError):
                continue
    now = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return _finite(soft), _finite(now)


def _finite(value: int) -> int:
    return UNLIMITED_FALLBACK if value == resource.RLIM_INFINITY else int(value)


def reserved_descriptors(max_conns: int, outgoing_conns: int) -> int:
    """Descriptors kept away from miners for everything else the node holds (WEB_RESERVE included)."""
    from p2pool.p2p.peerset import MAX_PENDING_ATTEMPTS, NodeConfig
    peers = max_conns + outgoing_conns + MAX_PENDING_ATTEMPTS + NodeConfig.max_unhandshaken
    return BASE_RESERVE + BITCOIND_RESERVE + peers + WEB_RESERVE


def default_max_miner_conns(limit: int, max_conns: int, outgoing_conns: int) -> int:
    """Stratum connections the worker port accepts by default under a descriptor limit of `limit`."""
    return max(MIN_MINER_CONNS, limit - reserved_descriptors(max_conns, outgoing_conns))


def default_per_address(max_miner_conns: int) -> int:
    """Connections one source address may hold by default: half the total, so that one host (or
    one attacker) cannot take every slot while a farm behind one NAT address still fits."""
    return max(1, max_miner_conns // 2)
