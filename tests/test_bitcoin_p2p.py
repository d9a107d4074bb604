"""Bitcoin P2P client (p2pool.bitcoin.p2p): framing, handshake, messages, lookups, reconnects.

A loopback "bitcoind" written here (independent framing code) plays the peer.
"""
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import protocol
from twisted.internet.testing import StringTransport

from p2pool.bitcoin import data, p2p
from twisted_helpers import reactor, run_in_reactor, wait_for  # noqa: F401 (fixture)

MAGIC = bytes.fromhex('dab5bffa')
COINBASE = {'version': 1, 'tx_ins': [{'previous_output': None, 'script': b'\x01\x02', 'sequence': None}],
            'tx_outs': [{'value': 50, 'script': b'\x51'}], 'lock_time': 0}


def wire(command, payload, magic=MAGIC):
    """Independent framing: magic, NUL-padded command, length, sha256d checksum, payload."""
    checksum = hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    return magic + command.encode().ljust(12, b'\0') + len(payload).to_bytes(4, 'little') + checksum + payload


def make_block(nonce=0):
    header = {'version': 0x20000000, 'previous_block': 7, 'merkle_root': data.txid(COINBASE),
              'timestamp': 1700000000, 'bits': 0x207fffff, 'nonce': nonce}
    return {'header': header, 'txs': [COINBASE]}


def version_payload(extra=b''):
    return p2p.version_type.pack({
        'version': 70016, 'services': 1, 'time': 1, 'nonce': 5, 'sub_version': b'/fake/', 'start_height': 3,
        'addr_to': {'services': 1, 'address': '127.0.0.1', 'port': 1},
        'addr_from': {'services': 1, 'address': '127.0.0.1', 'port': 2}}) + extra


class FakeBitcoind(protocol.Protocol):
    """The bitcoind side: records messages, answers version with version (+relay byte) and verack."""

    def connectionMade(self):
        self.factory.connections.append(self)
        self.buffer = b''

    def dataReceived(self, chunk):
        self.buffer += chunk
        while len(self.buffer) >= 24:
            length = int.from_bytes(self.buffer[16:20], 'little')
            if len(self.buffer) < 24 + length:
                return
            command = self.buffer[4:16].rstrip(b'\0').decode()
            payload, self.buffer = self.buffer[24:24 + length], self.buffer[24 + length:]
            self.factory.received.append((command, payload))
            if command == 'version':
                self.transport.write(wire('version', version_payload(b'\x01')) + wire('verack', b''))

    def send(self, command, payload):
        self.transport.write(wire(command, payload))


@pytest.fixture
def fake_bitcoind(reactor):
    factory = protocol.ServerFactory()
    factory.protocol, factory.connections, factory.received = FakeBitcoind, [], []
    port = run_in_reactor(reactor.listenTCP, 0, factory, interface='127.0.0.1')
    factory.port = port.getHost().port
    yield factory
    run_in_reactor(port.stopListening)
    for connection in factory.connections:
        run_in_reactor(connection.transport.loseConnection)


@pytest.fixture
def client(reactor, fake_bitcoind):
    c = run_in_reactor(lambda: p2p.BitcoindP2P('127.0.0.1', fake_bitcoind.port, MAGIC).start())
    run_in_reactor(c.when_connected)
    yield c
    run_in_reactor(c.stop)


def received(factory, command):
    return [payload for name, payload in factory.received if name == command]


def test_handshake_sends_the_spec_version_and_answers_verack(client, fake_bitcoind):
    version = p2p.version_type.unpack(received(fake_bitcoind, 'version')[0])
    assert (version['version'], version['services'], version['start_height']) == (70002, 1, 0)
    assert version['sub_version'].startswith(b'/P2Pool:') and version['sub_version'].endswith(b'/')
    assert version['addr_to']['port'] == fake_bitcoind.port
    wait_for(lambda: received(fake_bitcoind, 'verack'))
    assert client.connected


def test_ping_is_answered_with_the_same_nonce(client, fake_bitcoind):
    run_in_reactor(fake_bitcoind.connections[0].send, 'ping', (987654321).to_bytes(8, 'little'))
    pong = wait_for(lambda: received(fake_bitcoind, 'pong'))
    assert pong == [(987654321).to_bytes(8, 'little')]


def test_block_inv_is_announced_and_tx_inv_is_fetched(client, fake_bitcoind):
    seen = []
    run_in_reactor(client.new_block.watch, seen.append)
    inv = p2p.inv_type.pack([{'type': 2, 'hash': 0xabc}, {'type': 1, 'hash': 0xdef},
                             {'type': 3, 'hash': 0x123}])  # type 3 (filtered block) is ignored
    run_in_reactor(fake_bitcoind.connections[0].send, 'inv', inv)
    wait_for(lambda: seen == [0xabc])
    getdata = wait_for(lambda: received(fake_bitcoind, 'getdata'))
    assert p2p.inv_type.unpack(getdata[0]) == [{'type': 1, 'hash': 0xdef}]


def test_tx_message_fills_the_known_pool(client, fake_bitcoind):
    got = []
    run_in_reactor(client.new_tx.watch, got.append)
    run_in_reactor(fake_bitcoind.connections[0].send, 'tx', data.tx_type.pack(COINBASE) + b'trailing')
    wait_for(lambda: got)
    assert client.known_txs == {data.tx_key(COINBASE): COINBASE}


def test_get_block_and_get_header(client, fake_bitcoind):
    block = make_block()
    block_hash = data.header_hash(block['header'])
    pending = []
    run_in_reactor(lambda: pending.append(client.get_block(block_hash)))
    getdata = wait_for(lambda: received(fake_bitcoind, 'getdata'))
    assert p2p.inv_type.unpack(getdata[0]) == [{'type': 2, 'hash': block_hash}]
    run_in_reactor(fake_bitcoind.connections[0].send, 'block', data.block_type.pack(block))
    assert run_in_reactor(lambda: pending[0]) == block

    heard = []
    run_in_reactor(client.new_headers.watch, heard.append)
    run_in_reactor(lambda: pending.append(client.get_header(block_hash)))
    getheaders = p2p.getheaders_type.unpack(wait_for(lambda: received(fake_bitcoind, 'getheaders'))[0])
    assert getheaders == {'version': 1, 'have': [], 'last': block_hash}
    run_in_reactor(fake_bitcoind.connections[0].send, 'headers',
                   p2p.headers_type.pack([{'header': block['header'], 'txs': []}]))
    assert run_in_reactor(lambda: pending[1]) == block['header']
    assert heard == [[block['header']]]


def test_send_block_goes_out_when_connected(client, fake_bitcoind):
    block = make_block(1)
    assert run_in_reactor(client.send_block, block) is True
    sent = wait_for(lambda: received(fake_bitcoind, 'block'))
    assert data.block_type.unpack(sent[0]) == block


def test_reconnects_after_bitcoind_drops_the_connection(client, fake_bitcoind):
    changes = []
    run_in_reactor(client.connection_changed.watch, changes.append)
    run_in_reactor(fake_bitcoind.connections[0].transport.loseConnection)
    wait_for(lambda: changes == [False, True], timeout=10)
    assert len(fake_bitcoind.connections) == 2 and client.connected


def test_not_connected_means_no_block_sent(reactor):
    c = p2p.BitcoindP2P('127.0.0.1', 1, MAGIC)
    assert c.send_block(make_block()) is False and not c.connected
    with pytest.raises(ValueError):
        p2p.BitcoindP2P('127.0.0.1', 1, b'\x00\x01')


# --- framing, without sockets ------------------------------------------------------

class RecordingClient(p2p.BitcoindP2P):
    def __init__(self):
        super().__init__('127.0.0.1', 1, MAGIC)
        self.blocks = []
        self.new_block.watch(self.blocks.append)


def connected_protocol():
    client = RecordingClient()
    proto = p2p.BitcoinP2PProtocol(client)
    proto.makeConnection(StringTransport())
    return client, proto


STREAM = (b'garbage' + wire('inv', p2p.inv_type.pack([{'type': 2, 'hash': 1}]))
          + wire('inv', p2p.inv_type.pack([{'type': 2, 'hash': 2}]))[:-3] + b'xyz'  # bad checksum
          + wire('unknowncmd', b'whatever')
          + wire('inv', p2p.inv_type.pack([{'type': 2, 'hash': 3}]), b'\xf9\xbe\xb4\xd9')  # other magic
          + wire('inv', b'\x05')  # undecodable: skipped
          + wire('inv', p2p.inv_type.pack([{'type': 2, 'hash': 4}]) + b'trailing bytes are fine'))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), unique=True, max_size=8))
def test_any_chunking_gives_the_same_messages(cuts):
    client, proto = connected_protocol()
    bounds = [0] + sorted(cuts) + [len(STREAM)]
    for start, end in zip(bounds, bounds[1:]):
        proto.dataReceived(STREAM[start:end])
    assert client.blocks == [1, 4]


def test_oversized_frame_is_skipped():
    client, proto = connected_protocol()
    header = MAGIC + b'inv'.ljust(12, b'\0') + (p2p.MAX_PAYLOAD + 1).to_bytes(4, 'little') + b'\0' * 4
    proto.dataReceived(header + wire('inv', p2p.inv_type.pack([{'type': 2, 'hash': 9}])))
    assert client.blocks == [9]


def test_version_with_relay_byte_gets_verack_and_verack_makes_ready(reactor):
    def scenario():  # in the reactor thread: verack starts the ping LoopingCall
        client, proto = connected_protocol()
        proto.transport.clear()
        proto.dataReceived(wire('version', version_payload(b'\x01')) + wire('verack', b''))
        assert wire('verack', b'') in proto.transport.value()
        assert proto.ready and client.protocol is proto
        proto.connectionLost(None)
        assert not client.connected
    run_in_reactor(scenario)


def test_frame_refuses_long_names():
    with pytest.raises(p2p.FrameError):
        p2p.frame(MAGIC, 'averyverylongname', b'')
    assert p2p.frame(MAGIC, 'verack', b'') == wire('verack', b'')


# --- the real regtest bitcoind (Bitcoin SV 1.0.13, magic dab5bffa) ---------------------------

@pytest.fixture
def real_client(reactor, regtest_node):
    from p2pool.config import load_network
    magic = load_network('bsv_regtest').PARENT.P2P_PREFIX
    c = run_in_reactor(lambda: p2p.BitcoindP2P('127.0.0.1', regtest_node.p2p_port, magic).start())
    run_in_reactor(c.when_connected, timeout=20)
    yield c
    run_in_reactor(c.stop)


@pytest.mark.bitcoind
def test_real_bitcoind_serves_blocks_and_headers(real_client, regtest_node):
    best_hex = regtest_node.rpc('getbestblockhash')
    best = int(best_hex, 16)
    block = run_in_reactor(real_client.get_block, best, timeout=20)
    assert data.header_hash(block['header']) == best
    assert data.merkle_hash([data.txid(tx) for tx in block['txs']]) == block['header']['merkle_root']
    header = run_in_reactor(real_client.get_header, best, timeout=20)
    assert header == block['header']
    assert header['previous_block'] == int(regtest_node.rpc('getblockheader', best_hex)['previousblockhash'], 16)


@pytest.mark.bitcoind
def test_real_bitcoind_announces_new_blocks(real_client, regtest_node):
    announced = []
    run_in_reactor(real_client.new_block.watch, announced.append)
    new_hash = int(regtest_node.mine(1)[0], 16)
    wait_for(lambda: new_hash in announced, timeout=20)
