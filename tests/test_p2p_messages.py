"""P2P framing and messages: the spec's worked examples, round trips, hostile streams (p2p.md §1, §4, §12)."""
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from p2pool.bitcoin import serialize as s
from p2pool.bitcoin.data import NULL_OUTPOINT
from p2pool.p2p import messages as m
from p2pool.p2p.messages import DecodeError, EncodeError

with open(os.path.join(os.path.dirname(__file__), 'vectors', 'p2p_messages.json')) as f:
    VECTORS = json.load(f)
PREFIX = bytes.fromhex(VECTORS['prefix'])
EVENT_TYPES = (m.Frame, m.BadChecksum, m.OversizedFrame, m.SkippedGarbage)


def wire_fields(fields):
    """The spec writes sub_version as text; on the wire it is bytes."""
    fields = dict(fields)
    if 'sub_version' in fields:
        fields['sub_version'] = fields['sub_version'].encode()
    return fields


# --- §12 worked examples ------------------------------------------------------------------

@pytest.mark.parametrize('vector', VECTORS['vectors'], ids=lambda v: v['section'] + '-' + v['command'])
def test_worked_example_encodes_byte_exact(vector):
    fields = wire_fields(vector['fields'])
    assert m.encode_payload(vector['command'], fields).hex() == vector['payload']
    assert m.encode_message(PREFIX, vector['command'], fields).hex() == vector['framed']
    assert [f.hex() for f in m.encode_messages(PREFIX, vector['command'], fields)] == [vector['framed']]


@pytest.mark.parametrize('vector', VECTORS['vectors'], ids=lambda v: v['section'] + '-' + v['command'])
def test_worked_example_decodes(vector):
    payload = bytes.fromhex(vector['payload'])
    assert m.decode_payload(vector['command'], payload) == wire_fields(vector['fields'])
    framed = bytes.fromhex(vector['framed'])
    assert m.FrameDecoder(PREFIX).events(framed) == [m.Frame(vector['command'], payload)]
    # the same frame arriving one byte at a time
    decoder = m.FrameDecoder(PREFIX)
    events = [event for byte in framed for event in decoder.events(bytes([byte]))]
    assert events == [m.Frame(vector['command'], payload)] and decoder.buffered == 0


def test_worked_examples_cover_all_messages_but_shares_and_bestblock():
    covered = {v['command'] for v in VECTORS['vectors']}
    assert set(m.MESSAGE_TYPES) - covered == {'shares', 'bestblock'}  # round-tripped below
    assert len(m.MESSAGE_TYPES) == 13


def test_version_none_best_share_is_zero_on_the_wire():
    vector = next(v for v in VECTORS['vectors'] if v['section'] == '12.12')
    assert vector['payload'].endswith('00' * 32)
    with pytest.raises(EncodeError):
        m.encode_payload('version', dict(wire_fields(vector['fields']), best_share_hash=0))


# --- framing: resynchronisation, limits, checksum -------------------------------------------

PING = m.encode_message(PREFIX, 'ping', {})
GETADDRS = m.encode_message(PREFIX, 'getaddrs', {'count': 8})


def test_garbage_before_a_frame_is_skipped_and_counted():
    garbage = b'\x00\x01garbage' + PREFIX[:5]  # ends with a partial prefix
    decoder = m.FrameDecoder(PREFIX)
    assert decoder.events(garbage + PING) == [m.SkippedGarbage(len(garbage)), m.Frame('ping', b'')]
    assert decoder.garbage_bytes == len(garbage)


def test_prefix_split_across_chunks_is_found():
    decoder = m.FrameDecoder(PREFIX)
    assert decoder.events(b'xyz' + PING[:5]) == [m.SkippedGarbage(1)]  # only a 7-byte tail is kept
    assert decoder.events(PING[5:]) == [m.SkippedGarbage(2), m.Frame('ping', b'')]


def test_pure_garbage_keeps_only_a_short_tail():
    decoder = m.FrameDecoder(PREFIX)
    events = decoder.events(b'\xaa' * 100_000)
    assert events == [m.SkippedGarbage(100_000 - 7)] and decoder.buffered == 7


def test_oversized_length_is_rejected_before_the_payload_arrives():
    decoder = m.FrameDecoder(PREFIX, max_payload_size=1000)
    header = PREFIX + b'shares'.ljust(12, b'\x00') + (1001).to_bytes(4, 'little')
    assert decoder.events(header) == [m.OversizedFrame('shares', 1001)]
    assert decoder.buffered == 0
    # the abandoned checksum and payload bytes are scanned as ordinary stream bytes
    assert decoder.events(b'\x01\x02\x03\x04' + b'p' * 20 + GETADDRS) == [
        m.SkippedGarbage(24), m.Frame('getaddrs', bytes.fromhex('08000000'))]


def test_maximum_length_is_accepted():
    payload = m.encode_payload('have_tx', {'tx_hashes': [7] * 3})
    framed = m.frame(PREFIX, 'have_tx', payload, max_payload_size=len(payload))
    assert m.FrameDecoder(PREFIX, len(payload)).events(framed) == [m.Frame('have_tx', payload)]
    with pytest.raises(m.MessageTooLong):
        m.frame(PREFIX, 'have_tx', payload, max_payload_size=len(payload) - 1)


def test_bad_checksum_is_reported_and_scanning_resumes():
    broken = bytearray(GETADDRS)
    broken[-1] ^= 1
    assert m.FrameDecoder(PREFIX).events(bytes(broken) + PING) == [
        m.BadChecksum('getaddrs', 4), m.Frame('ping', b'')]


def test_unknown_command_is_framed_but_not_decodable():
    framed = m.frame(PREFIX, 'mystery', b'abc')
    assert m.FrameDecoder(PREFIX).events(framed) == [m.Frame('mystery', b'abc')]
    with pytest.raises(m.UnknownCommand):
        m.decode_payload('mystery', b'abc')
    assert issubclass(m.UnknownCommand, DecodeError)


def test_command_names_are_limited_to_11_characters():
    assert m.frame(PREFIX, 'a' * 11, b'')[8:20] == b'a' * 11 + b'\x00'
    with pytest.raises(EncodeError):
        m.frame(PREFIX, 'a' * 12, b'')


@pytest.mark.parametrize('command, payload_hex', [
    ('getaddrs', '080000'),                    # short
    ('getaddrs', '0800000000'),                # trailing byte
    ('sharereq', '00' * 32 + '00' + 'fd0100' + '00'),  # non-canonical VarInt
    ('sharereply', '00' * 32 + '07' + '00'),   # result outside the enum
    ('have_tx', 'ff' + 'ff' * 8),              # absurd list count
    ('shares', '01' + '23' + 'fe00000001'),    # contents longer than the payload
    ('ping', '00'),                            # ping carries nothing
])
def test_malformed_payloads_raise_decode_error(command, payload_hex):
    with pytest.raises(DecodeError):
        m.decode_payload(command, bytes.fromhex(payload_hex))


# --- splitting too-long messages (§1 sender rules) -----------------------------------------

def wrappers(n, size):
    return [{'type': 35, 'contents': bytes([i % 256]) * size} for i in range(n)]


def test_long_share_lists_are_halved_until_each_part_fits():
    shares = wrappers(13, 100)
    frames = m.encode_messages(PREFIX, 'shares', {'shares': shares}, max_payload_size=350)
    assert len(frames) > 1
    decoder = m.FrameDecoder(PREFIX, 350)
    received = [share for event in decoder.events(b''.join(frames))
                for share in m.decode_payload(event.command, event.payload)['shares']]
    assert received == shares


def test_remember_tx_splits_both_lists():
    fields = {'tx_hashes': [1, 2, 3], 'txs': [TX] * 2}
    payloads = m.split_fields('remember_tx', fields, max_payload_size=80)
    parts = [m.decode_payload('remember_tx', p) for p in payloads]
    assert all(len(p) <= 80 for p in payloads)
    assert [h for p in parts for h in p['tx_hashes']] == [1, 2, 3]
    assert [t for p in parts for t in p['txs']] == [TX] * 2


def test_single_item_too_long_cannot_be_sent():
    with pytest.raises(m.MessageTooLong):
        m.split_fields('shares', {'shares': wrappers(1, 500)}, max_payload_size=100)


def test_non_list_message_too_long_cannot_be_sent():
    with pytest.raises(m.MessageTooLong):
        m.split_fields('sharereq', {'id': 1, 'hashes': [1] * 10, 'parents': 0, 'stops': []},
                       max_payload_size=100)


def test_bad_fields_raise_encode_error():
    for command, fields in [('getaddrs', {'count': -1}), ('addrme', {}), ('version', None),
                            ('remember_tx', {'tx_hashes': [], 'txs': [{'version': 1}]}),
                            ('addrs', {'addrs': [{'timestamp': 0, 'address': {
                                'services': 0, 'address': 'not an ip', 'port': 1}}]})]:
        with pytest.raises(EncodeError):
            m.encode_payload(command, fields)


# --- hypothesis: round trips for every message ---------------------------------------------

def uint(bits):
    return st.integers(0, 2**bits - 1)


ip = st.binary(min_size=16, max_size=16).map(lambda raw: s.IPv6Address.read(raw, 0)[0])
address = st.fixed_dictionaries({'services': uint(64), 'address': ip, 'port': uint(16)})
wrapper = st.fixed_dictionaries({'type': uint(64), 'contents': st.binary(max_size=64)})
hashes = st.lists(uint(256), max_size=5)
header = st.fixed_dictionaries({
    'version': uint(32), 'previous_block': st.none() | st.integers(1, 2**256 - 1),
    'merkle_root': uint(256), 'timestamp': uint(32), 'bits': uint(32), 'nonce': uint(32)})
tx_in = st.fixed_dictionaries({
    'previous_output': st.none() | st.fixed_dictionaries({'hash': uint(256), 'index': uint(32)}).filter(
        lambda outpoint: outpoint != NULL_OUTPOINT),
    'script': st.binary(max_size=20), 'sequence': st.none() | st.integers(0, 2**32 - 2)})
tx_out = st.fixed_dictionaries({'value': uint(64), 'script': st.binary(max_size=20)})
plain_tx = st.fixed_dictionaries({'version': uint(32), 'tx_ins': st.lists(tx_in, min_size=1, max_size=2),
                                  'tx_outs': st.lists(tx_out, max_size=2), 'lock_time': uint(32)})


@st.composite
def segwit_tx(draw):
    tx = draw(plain_tx)
    tx['tx_ins'] = draw(st.lists(tx_in, max_size=2))
    witness = st.lists(st.binary(max_size=10), max_size=2)
    return dict(tx, marker=0, flag=draw(st.integers(1, 255)),
                witness=[draw(witness) for _ in tx['tx_ins']])


TX = {'version': 1, 'tx_ins': [{'previous_output': None, 'script': b'\x01\x02', 'sequence': None}],
      'tx_outs': [{'value': 5000, 'script': b'\x51'}], 'lock_time': 0}

FIELD_STRATEGIES = {
    'version': st.fixed_dictionaries({
        'version': uint(32), 'services': uint(64), 'addr_to': address, 'addr_from': address,
        'nonce': uint(64), 'sub_version': st.binary(max_size=40), 'mode': uint(32),
        'best_share_hash': st.none() | st.integers(1, 2**256 - 1)}),
    'ping': st.just({}),
    'addrme': st.fixed_dictionaries({'port': uint(16)}),
    'addrs': st.fixed_dictionaries({'addrs': st.lists(
        st.fixed_dictionaries({'timestamp': uint(64), 'address': address}), max_size=4)}),
    'getaddrs': st.fixed_dictionaries({'count': uint(32)}),
    'shares': st.fixed_dictionaries({'shares': st.lists(wrapper, max_size=4)}),
    'sharereq': st.fixed_dictionaries({'id': uint(256), 'hashes': hashes, 'parents': uint(64),
                                       'stops': hashes}),
    'sharereply': st.fixed_dictionaries({'id': uint(256), 'result': st.sampled_from(
        sorted(m.SHAREREPLY_RESULTS.values())), 'shares': st.lists(wrapper, max_size=4)}),
    'bestblock': st.fixed_dictionaries({'header': header}),
    'have_tx': st.fixed_dictionaries({'tx_hashes': hashes}),
    'losing_tx': st.fixed_dictionaries({'tx_hashes': hashes}),
    'remember_tx': st.fixed_dictionaries({'tx_hashes': hashes,
                                          'txs': st.lists(plain_tx | segwit_tx(), max_size=3)}),
    'forget_tx': st.fixed_dictionaries({'tx_hashes': hashes}),
}
any_message = st.sampled_from(sorted(FIELD_STRATEGIES)).flatmap(
    lambda command: st.tuples(st.just(command), FIELD_STRATEGIES[command]))


def test_strategies_cover_every_message():
    assert set(FIELD_STRATEGIES) == set(m.MESSAGE_TYPES)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(any_message)
def test_every_message_round_trips(message):
    command, fields = message
    payload = m.encode_payload(command, fields)
    assert m.decode_payload(command, payload) == fields
    framed = m.encode_message(PREFIX, command, fields)
    assert m.FrameDecoder(PREFIX).events(framed) == [m.Frame(command, payload)]


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.binary(max_size=12), any_message), max_size=6),
       st.lists(st.integers(1, 64), min_size=1, max_size=20))
def test_frames_between_garbage_arrive_in_order_whatever_the_chunking(items, chunk_sizes):
    stream, expected = b'', []
    for garbage, (command, fields) in items:
        garbage = garbage.replace(PREFIX[:1], b'')  # keep the garbage from forging a prefix
        stream += garbage + m.encode_message(PREFIX, command, fields)
        expected.append((command, fields))
    decoder, events, pos, i = m.FrameDecoder(PREFIX), [], 0, 0
    while pos < len(stream):
        size = chunk_sizes[i % len(chunk_sizes)]
        events += decoder.events(stream[pos:pos + size])
        pos, i = pos + size, i + 1
    frames = [(e.command, m.decode_payload(e.command, e.payload)) for e in events if isinstance(e, m.Frame)]
    assert frames == expected


# --- hypothesis: hostile input never raises anything but the documented errors ---------------

def accounted_bytes(events):
    total = 0
    for event in events:
        if isinstance(event, m.SkippedGarbage):
            total += event.count
        elif isinstance(event, m.OversizedFrame):
            total += m.HEADER_LENGTH - 4
        else:
            total += m.HEADER_LENGTH + (event.length if isinstance(event, m.BadChecksum) else len(event.payload))
    return total


frame_like = st.builds(lambda command, length, rest: PREFIX + command.ljust(12, b'\x00')[:12]
                       + length.to_bytes(4, 'little') + rest,
                       st.sampled_from([c.encode() for c in m.MESSAGE_TYPES] + [b'', b'\xff' * 12]),
                       st.integers(0, 2**32 - 1) | st.integers(0, 64), st.binary(max_size=80))


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=100) | frame_like | st.just(PREFIX), max_size=10),
       st.integers(1, 2000))
def test_random_streams_only_produce_events_and_every_byte_is_accounted_for(chunks, max_payload):
    decoder = m.FrameDecoder(PREFIX, max_payload)
    events = []
    for chunk in chunks:
        events += decoder.events(chunk)
    assert all(isinstance(event, EVENT_TYPES) for event in events)
    assert accounted_bytes(events) + decoder.buffered == sum(len(c) for c in chunks)
    assert decoder.buffered <= m.HEADER_LENGTH + max_payload + max([len(c) for c in chunks] + [0])
    for event in events:
        if isinstance(event, m.Frame):
            try:
                m.decode_payload(event.command, event.payload)
            except DecodeError:
                pass


@settings(max_examples=300)
@given(st.sampled_from(sorted(m.MESSAGE_TYPES)), st.binary(max_size=300))
def test_random_payloads_raise_only_decode_error(command, payload):
    try:
        fields = m.decode_payload(command, payload)
    except DecodeError:
        return
    assert m.encode_payload(command, fields) == payload  # whatever decodes is canonical


@settings(max_examples=200)
@given(any_message, st.data())
def test_mutated_payloads_raise_only_decode_error(message, data):
    command, fields = message
    payload = bytearray(m.encode_payload(command, fields))
    if payload:
        index = data.draw(st.integers(0, len(payload) - 1))
        payload[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(payload)))
    for candidate in (bytes(payload), bytes(payload[:cut]), bytes(payload) + b'\x00'):
        try:
            m.decode_payload(command, candidate)
        except DecodeError:
            pass


def test_a_frame_over_the_receivers_limit_is_dropped_from_its_header():
    from p2pool.p2p.messages import FrameDecoder, OverLimitFrame, encode_message
    limits = {'ping': 0, 'addrme': 1}
    decoder = FrameDecoder(b'\x01' * 8, payload_limit=lambda command: limits.get(command, 10**6))
    big = encode_message(b'\x01' * 8, 'addrme', {'port': 9333})
    events = decoder.events(big[:30])                      # header only: refused before the payload
    assert events == [OverLimitFrame('addrme', 2, 1)]
    assert decoder.buffered <= 8


def test_whole_frame_takes_exactly_one_clean_frame_and_leaves_the_rest_to_the_events():
    """The one-read-one-frame shortcut answers as the event path would, or declines."""
    from p2pool.p2p.messages import FrameDecoder, encode_message
    good = encode_message(PREFIX, 'addrme', {'port': 9333})
    bad_checksum = good[:20 + 4] + bytes(4) + good[28:]
    assert FrameDecoder(PREFIX).whole_frame(good) == ('addrme', good[m.HEADER_LENGTH:])
    assert FrameDecoder(PREFIX, payload_limit=lambda command: 1).whole_frame(good) is None
    for declined in (good + good, good[:-1], bad_checksum, b'\x00' + good, bytearray(good),
                     m.frame(PREFIX, 'mystery', b'x')):
        decoder = FrameDecoder(PREFIX)
        assert decoder.whole_frame(declined) is None
        assert decoder.buffered == 0
    decoder = FrameDecoder(PREFIX)
    decoder.feed(good[:5])
    assert decoder.whole_frame(good) is None    # bytes already buffered come first


def test_whole_frame_keeps_the_fixed_limits_and_the_maximum_payload_size():
    from p2pool.p2p.messages import FrameDecoder, encode_message
    good = encode_message(PREFIX, 'addrme', {'port': 9333})   # a 2-byte payload
    for fixed, max_payload_size, taken in [({'addrme': 2}, 10, True), ({'addrme': 1}, 10, False),
                                           ({'addrme': 100}, 1, False), ({'ping': 0}, 10, True)]:
        decoder = FrameDecoder(PREFIX, max_payload_size, payload_limit=lambda command: 2)
        decoder.fixed_limits = fixed
        assert decoder.fixed_limits is fixed
        assert (decoder.whole_frame(good) is not None) == taken


def test_whole_frame_knows_a_ping_by_its_bytes_and_checks_any_other_empty_frame():
    from p2pool.p2p.messages import FrameDecoder
    ping = m.frame(PREFIX, 'ping', b'')
    assert FrameDecoder(PREFIX).whole_frame(ping) == ('ping', b'')
    assert FrameDecoder(PREFIX).whole_frame(bytearray(ping)) is None   # not bytes: fed as usual
    assert FrameDecoder(b'\x01' * m.PREFIX_LENGTH).whole_frame(ping) is None   # another network's ping
    bad_checksum = ping[:-4] + bytes(4)
    assert FrameDecoder(PREFIX).whole_frame(bad_checksum) is None
    # an empty payload of a message with fields is not a known frame: the header is read as usual
    empty_getaddrs = m.frame(PREFIX, 'getaddrs', b'')
    assert FrameDecoder(PREFIX).whole_frame(empty_getaddrs) == ('getaddrs', b'')
    decoder = FrameDecoder(PREFIX)
    decoder.feed(b'\x00')
    assert decoder.whole_frame(ping) is None    # bytes already buffered come first
