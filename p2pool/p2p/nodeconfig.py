"""The peer network's local policy: NodeConfig, and the running node's one from its command line.

P2PNode (peerset.py) takes a NodeConfig; library users and tests build one
directly (ban_exempt empty: any host can be banned), the running node through
config_from_args (the loopback exempt, as the spec never bans 127.0.0.1).
"""
import dataclasses

from p2pool.p2p.addrstore import LOOPBACK_HOSTS

__all__ = ['NodeConfig', 'config_from_args']


@dataclasses.dataclass
class NodeConfig:
    """Local policy of the peer network; see config_from_args for the command line."""

    port: int | None = None                    # listening port (0: any free one); None: do not listen
    listen_interface: str | None = None        # None: IPv6 dual stack '::', falling back to IPv4 ''
    max_incoming: int = 40              # --max-conns: incoming peer slots (handshaken peers only)
    max_per_group: int = 3              # incoming peers per IPv4 /16 (IPv6 /32)
    max_unhandshaken: int = 20          # incoming connections still before their version message
    max_unhandshaken_per_group: int = 2  # of those, per IPv4 /16 (IPv6 /32)
    outgoing_target: int = 6            # --outgoing-conns (0..10)
    fixed_peers: tuple = ()             # -n: (host, port) pairs kept connected
    external_address: tuple | None = None      # --external-ip: (host, port or None)
    advertise: bool = True
    use_bootstrap: bool = True          # seed the address store from the network file
    ban_exempt: frozenset = frozenset()
    ban_time: float = 3600.0            # [jt] bantime; a ban lasts ban_time × score²
    download_ban_time: float = 30.0     # [jt] base for failed share downloads
    connect_timeout: float = 5.0
    upnp: bool = False


def config_from_args(args, net) -> NodeConfig:
    """The running node's NodeConfig from the parsed command line (p2pool/app/cli.py)."""
    return NodeConfig(
        port=args.p2pool_port or net.P2P_PORT,
        max_incoming=args.max_conns,
        outgoing_target=args.outgoing_conns,
        fixed_peers=tuple((host, port or net.P2P_PORT) for host, port in args.p2pool_nodes),
        external_address=args.external_ip,
        advertise=args.advertise,
        ban_exempt=LOOPBACK_HOSTS,
        upnp=args.upnp,
    )
