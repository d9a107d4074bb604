"""The node's bitcoinds: the one found by --bitcoind-* options and bitcoin.conf, then each --bitcoind-fallback.

    group = bitcoind_group(args, net, access)   # p2pool.bitcoin.failover.BitcoindGroup

Raises ValueError with a one-line reason for a malformed --bitcoind-fallback URL.
"""
from typing import Any

from p2pool.bitcoin.daemon import BitcoindBridge
from p2pool.bitcoin.failover import BitcoindGroup, parse_daemon_url


def bitcoind_group(args: Any, net: Any, access: Any, reactor: Any = None) -> BitcoindGroup:
    members = [('bitcoind', BitcoindBridge(access.host, access.rpc_port, access.p2p_port, access.user,
                                           access.password, net, reactor=reactor, use_ssl=args.bitcoind_rpc_ssl))]
    for index, url in enumerate(getattr(args, 'bitcoind_fallbacks', None) or [], start=1):
        address = parse_daemon_url(url, net.PARENT.P2P_PORT)
        bridge = BitcoindBridge(address.host, address.rpc_port, address.p2p_port, address.user, address.password,
                                net, reactor=reactor, use_ssl=address.use_ssl)
        members.append(('fallback %d' % index, bridge))
    return BitcoindGroup(members, net, reactor=reactor)

