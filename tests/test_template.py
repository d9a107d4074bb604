"""Block templates (p2pool.bitcoin.template): parsing, polling, long polling, P2P-triggered refresh."""
import os
import threading
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pool.bitcoin import data, rpc
from p2pool.bitcoin.blocks import ParentHeights
from p2pool.bitcoin.hashes import hash256
from p2pool.events import Event
from p2pool.bitcoin.template import Template, TemplateError, TemplateSource, parse_template
from p2pool.config import load_network
from p2pool.testing.jsonrpc_server import JsonRpcTestServer
from twisted_helpers import reactor, run_in_reactor, wait_for  # noqa: F401 (fixture)

TX = {'version': 1, 'tx_ins': [{'previous_output': {'hash': 5, 'index': 0}, 'script': b'\x00', 'sequence': None}],
      'tx_outs': [{'value': 10, 'script': b'\x51'}], 'lock_time': 0}
SEGWIT_TX = dict(TX, marker=0, flag=1, witness=[[b'\x01\x02']])


def answer(**overrides):
    result = {'version': 0x20000000, 'previousblockhash': '00' * 31 + 'ab', 'height': 102, 'bits': '207fffff',
              'curtime': 1700000000, 'coinbasevalue': 5000001000, 'coinbaseaux': {'flags': '0a0b'},
              'longpollid': 'lp1', 'transactions': [
                  {'data': data.tx_type.pack(TX).hex(), 'fee': 1000},
                  {'data': data.tx_type.pack(SEGWIT_TX).hex()}]}
    result.update(overrides)
    return result


def test_parse_template_fields():
    template = parse_template(answer(), now=5.0)
    assert (template.version, template.previous_block, template.height, template.bits, template.time) == (
        0x20000000, 0xab, 102, 0x207fffff, 1700000000)
    assert (template.subsidy, template.coinbaseflags, template.last_update, template.longpollid) == (
        5000001000, b'\x0a\x0b', 5.0, 'lp1')
    assert template.transactions == [TX, SEGWIT_TX]
    assert template.transaction_keys == [hash256(data.tx_type.pack(TX)), hash256(data.tx_type.pack(SEGWIT_TX))]
    assert template.transaction_fees == [1000, None]
    assert template.block_target == data.bits_to_target(0x207fffff)
    assert not template.segwit and template.default_witness_commitment is None


def test_parse_prefers_time_coinbaseflags_and_reads_segwit_fields():
    template = parse_template(answer(time=1700000005, coinbaseflags='ff', rules=['csv', '!segwit'],
                                     default_witness_commitment='6a24aa21a9ed' + '11' * 32))
    assert (template.time, template.coinbaseflags, template.segwit) == (1700000005, b'\xff', True)
    assert template.default_witness_commitment == bytes.fromhex('6a24aa21a9ed' + '11' * 32)


def test_parse_getmemorypool_shape_with_given_height():
    raw = answer(transactions=[data.tx_type.pack(TX).hex()])
    del raw['height']
    template = parse_template(raw, height=7)
    assert (template.height, template.transactions, template.transaction_fees) == (7, [TX], [None])


@pytest.mark.parametrize('overrides', [
    {'previousblockhash': 'zz'}, {'bits': None}, {'coinbasevalue': -1}, {'coinbasevalue': 1.5},
    {'transactions': [{'data': '00'}]}, {'transactions': [{'fee': 1}]}, {'transactions': 'x'},
    {'coinbaseaux': {'flags': 'xyz'}}, {'rules': 'segwit'}, {'version': True}, {'height': None},
    {'default_witness_commitment': 'q'}, {'transactions': [{'data': data.tx_type.pack(TX).hex(), 'fee': 'x'}]},
])
def test_malformed_answers_raise_template_error(overrides):
    with pytest.raises(TemplateError):
        parse_template(answer(**overrides))


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                               max_size=4), max_leaves=12),
       st.sampled_from(list(answer())))
def test_garbage_in_any_field_only_ever_raises_template_error(garbage, key):
    try:
        parse_template(answer(**{key: garbage}))
    except TemplateError:
        pass


# --- a getblocktemplate double with long polling ---------------------------------------

class TemplateDaemon:
    """Serves getblocktemplate; long polls block until new_block() changes the longpollid."""

    def __init__(self):
        self.height, self.tip, self.requests = 101, 0x1234, []
        self.condition = threading.Condition()
        self.malformed = False

    def longpollid(self):
        return '%064x%d' % (self.tip, self.height)

    def getblocktemplate(self, request):
        self.requests.append(request)
        with self.condition:
            if 'longpollid' in request:
                self.condition.wait_for(lambda: request['longpollid'] != self.longpollid(), timeout=5)
            if self.malformed:
                return {'nonsense': True}
            return answer(previousblockhash='%064x' % self.tip, height=self.height + 1,
                          longpollid=self.longpollid(), transactions=[])

    def new_block(self):
        with self.condition:
            self.height, self.tip = self.height + 1, int.from_bytes(os.urandom(32), 'big')
            self.condition.notify_all()


@pytest.fixture
def daemon():
    double = TemplateDaemon()
    with JsonRpcTestServer({'getblocktemplate': double.getblocktemplate}) as server:
        double.server = server
        yield double
        double.new_block()  # release parked long polls


def make_source(daemon, net_name='bsv_regtest', **kwargs):
    client = rpc.RpcClient('127.0.0.1', daemon.server.port, daemon.server.user, daemon.server.password)
    return TemplateSource(client, load_network(net_name), **kwargs)


@pytest.fixture
def source(reactor, daemon):
    src = make_source(daemon, heights=ParentHeights())
    yield src
    run_in_reactor(src.stop)


def test_first_template_and_rules_for_a_cash_parent(source, daemon):
    template = run_in_reactor(source.start)
    assert isinstance(template, Template) and template.previous_block == 0x1234
    assert daemon.requests[0] == {'mode': 'template'}  # no rules on the BSV test node
    assert source.contact is True and not source.is_stale()
    assert source.heights.known(0x1234) == 101


def test_segwit_parent_asks_for_the_segwit_rule(reactor, daemon):
    src = make_source(daemon, 'bitcoin', longpoll=False)
    run_in_reactor(src.start)
    run_in_reactor(src.stop)
    assert daemon.requests[0] == {'mode': 'template', 'rules': ['segwit']}


def test_long_poll_delivers_the_next_block(source, daemon):
    changes = []
    run_in_reactor(source.changed.watch, changes.append)
    run_in_reactor(source.start)
    wait_for(lambda: any('longpollid' in r for r in daemon.requests))
    daemon.new_block()
    wait_for(lambda: source.current.height == 103)
    assert changes[-1].previous_block == daemon.tip


def test_p2p_block_announcement_triggers_a_refresh(reactor, daemon):
    fake_p2p = SimpleNamespace(new_block=Event())
    src = make_source(daemon, p2p=fake_p2p, longpoll=False)
    run_in_reactor(src.start)
    daemon.height, daemon.tip = daemon.height + 1, 0x999  # bitcoind moved; no long poll to tell us
    run_in_reactor(fake_p2p.new_block.happened, 0x999)
    wait_for(lambda: src.current.previous_block == 0x999)
    run_in_reactor(src.stop)


def test_malformed_template_is_skipped_and_the_old_one_kept(source, daemon, caplog):
    first = run_in_reactor(source.start)
    daemon.malformed = True
    assert run_in_reactor(source.refresh) is None
    assert source.current is first and source.contact is True
    assert 'malformed block template' in caplog.text


def test_older_request_answer_does_not_replace_a_newer_template(source, daemon):
    run_in_reactor(source.start)
    newer = parse_template(answer(height=200))
    older = parse_template(answer(height=150))

    def scenario():
        source._apply(newer, 10)
        source._apply(older, 9)
        return source.current
    assert run_in_reactor(scenario) is newer


def test_lost_contact_is_reported_and_recovered(reactor, daemon, caplog):
    src = make_source(daemon, longpoll=False, retry_interval=0.05)
    states = []
    run_in_reactor(src.contact_changed.watch, states.append)
    run_in_reactor(src.start)
    daemon.server.stop()
    assert run_in_reactor(src.refresh) is None
    assert src.contact is False and 'lost contact with bitcoind' in caplog.text
    daemon.server.start()
    wait_for(lambda: src.contact is True)
    assert states == [True, False, True]
    run_in_reactor(src.stop)


def test_is_stale_after_sixty_seconds(source):
    assert source.is_stale()
    first = run_in_reactor(source.start)
    assert not source.is_stale(now=first.last_update + 59)
    assert source.is_stale(now=first.last_update + 61)


def test_missing_getblocktemplate_falls_back_to_getmemorypool(reactor):
    legacy = answer(transactions=[data.tx_type.pack(TX).hex()])
    with JsonRpcTestServer({'getmemorypool': lambda: legacy}) as server:
        src = TemplateSource(rpc.RpcClient('127.0.0.1', server.port, server.user, server.password),
                             load_network('bsv_regtest'), longpoll=False)
        template = run_in_reactor(src.start)
        run_in_reactor(src.stop)
    assert template.transactions == [TX] and [c[0] for c in server.calls] == ['getblocktemplate',
                                                                               'getmemorypool']


# --- the real regtest bitcoind (Bitcoin SV 1.0.13) ------------------------------------------

@pytest.fixture
def bridge(reactor, regtest_node):
    from p2pool.bitcoin.daemon import BitcoindBridge
    node = regtest_node
    made = []

    def start(**options):
        b = BitcoindBridge('127.0.0.1', node.rpc_port, node.p2p_port, node.user, node.password,
                           load_network('bsv_regtest'), reactor=reactor, **options)
        made.append(b)
        return run_in_reactor(b.start, timeout=30), b
    yield start
    for b in made:
        run_in_reactor(b.stop)


@pytest.mark.bitcoind
def test_real_template_matches_bitcoind(bridge, regtest_node):
    template, b = bridge()
    assert template.previous_block == int(regtest_node.rpc('getbestblockhash'), 16)
    assert template.height == regtest_node.rpc('getblockcount') + 1
    assert template.bits == 0x207fffff and template.subsidy > 0 and not template.segwit
    assert b.heights.known(template.previous_block) == template.height - 1


@pytest.mark.bitcoind
def test_block_from_the_other_node_arrives_over_p2p_and_renews_work(bridge, regtest_pair):
    template, b = bridge(longpoll=False)  # only the P2P announcement can tell us
    announced = []
    run_in_reactor(b.p2p.new_block.watch, announced.append)
    new_hash = int(regtest_pair.second.mine(1)[0], 16)
    wait_for(lambda: b.source.current.previous_block == new_hash, timeout=20)
    assert new_hash in announced and b.source.current.height == template.height + 1


@pytest.mark.bitcoind
def test_long_poll_alone_renews_work(bridge, regtest_node):
    template, b = bridge(poll_interval=3600)
    run_in_reactor(lambda: b.p2p.new_block._watchers.clear())  # deafen the P2P trigger
    new_hash = int(regtest_node.mine(1)[0], 16)
    wait_for(lambda: b.source.current.previous_block == new_hash, timeout=20)
