"""The link to the local bitcoind in one object: what the node, the tests and the benchmarks use.

    bridge = BitcoindBridge('127.0.0.1', rpc_port, p2p_port, user, password, net, reactor=reactor)
    template = yield bridge.start()          # in the reactor thread
    ...
    bridge.stop()

It holds one RPC client, the Bitcoin P2P connection,
a TemplateSource refreshed by long polls, P2P block announcements and a timer,
ParentHeights fed by templates, and a BlockSubmitter using both paths.
`reactor` is the one the P2P connection's timeout runs on.
"""
from collections.abc import Generator
from typing import Any

from twisted.internet import defer

from p2pool.bitcoin.blocks import Block, BlockSubmitter, ParentHeights, SubmitResult
from p2pool.bitcoin.p2p import BitcoindP2P
from p2pool.bitcoin.rpc import RpcClient
from p2pool.bitcoin.template import Template, TemplateSource


class BitcoindBridge:
    def __init__(self, host: str, rpc_port: int, p2p_port: int, user: str | None, password: str | None, net: Any, *,
                 reactor: Any, longpoll: bool = True, use_ssl: bool = False, **source_options: Any) -> None:
        self.net, self.reactor = net, reactor
        self.rpc = RpcClient(host, rpc_port, user, password, use_ssl=use_ssl)
        self.p2p = BitcoindP2P(host, p2p_port, net.PARENT.P2P_PREFIX)
        self.heights = ParentHeights(self.rpc, self.p2p)
        self.source = TemplateSource(self.rpc, net, p2p=self.p2p, heights=self.heights, longpoll=longpoll,
                                     **source_options)
        self.submitter = BlockSubmitter(self.rpc, self.p2p)

    @defer.inlineCallbacks
    def start(self, p2p_timeout: float = 30) -> Generator[defer.Deferred[Any], Any, Template | None]:
        """Connect P2P first (a Bitcoin SV node serves templates only to a node with peers), then poll."""
        self.p2p.start()
        yield self.p2p.when_connected().addTimeout(p2p_timeout, self.reactor)
        template: Template | None = yield self.source.start()
        return template

    def submit_block(self, block: Block, segwit: bool) -> defer.Deferred[SubmitResult]:
        """A block our miners found: to bitcoind at once, over RPC and P2P (BlockSubmitter),
        the way the current template was fetched (getblocktemplate or getmemorypool)."""
        return self.submitter.submit(block, segwit=segwit, legacy=self.source.legacy)

    def tip(self) -> int | None:
        """The hash of bitcoind's best block (the current template's parent), or None."""
        template = self.source.current
        return template.previous_block if template is not None else None

    def stop(self) -> None:
        self.source.stop()
        self.p2p.stop()
        self.rpc.close()
