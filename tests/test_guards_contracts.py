"""The typing.Protocol contracts of the rooms, and the real objects and test doubles that stand behind them.

mypy checks this file too (setup.cfg `files`; run by test_guards_lint.py): each annotated assignment below
holds a real implementation or a double to its Protocol structurally (members, their arity, and their types
where the double declares them). At run time the same objects are checked member by member
(runtime_checkable), so a member renamed on one side fails here without mypy too.
"""
from p2pool.app.views import WebNodeView, WorkNodeView
from p2pool.config import load_network
from p2pool.p2p.contracts import PeerChain, PeerNode
from p2pool.p2p.peerset import P2PNode
from p2pool.sharechain.chain import ShareChain
from p2pool.sharechain.tracker import Tracker
from p2pool.testing.web_testnode import FixedNode
from p2pool.web.contracts import WebNode
from p2pool.work.contracts import WorkNode
from test_p2p_protocol import StubNode
from test_worker_integration import Node as IntegrationWorkNode
from twisted.internet import task
from worker_helpers import FakeNode

NET = load_network('bitcoin_regtest')


def test_share_chain_and_p2p_node_keep_the_p2p_contracts() -> None:
    chain: PeerChain = ShareChain(NET, clock=lambda: 0.0)
    node: PeerNode = P2PNode(chain, reactor=task.Clock())
    assert isinstance(chain, PeerChain)
    assert isinstance(node, PeerNode)


def test_the_p2p_test_node_keeps_the_peer_node_contract() -> None:
    stub: PeerNode = StubNode(nonce=1)
    assert isinstance(stub, PeerNode)


def test_the_work_node_view_and_the_work_doubles_keep_the_work_contract() -> None:
    chain = ShareChain(NET, clock=lambda: 0.0)
    nodes: list[WorkNode] = [WorkNodeView(chain, None), FakeNode(), IntegrationWorkNode(Tracker())]
    for node in nodes:
        assert isinstance(node, WorkNode)


def test_the_web_node_view_and_the_test_web_node_keep_the_web_contract() -> None:
    chain = ShareChain(NET, clock=lambda: 0.0)
    view: WebNode = WebNodeView(NET, chain, None, None, None, None, 0.0, 0.0, None, start_time=0.0)
    fixed: WebNode = FixedNode(NET, Tracker())
    for node in (view, fixed):
        assert isinstance(node, WebNode)
