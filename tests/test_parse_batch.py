"""ShareChain.parse_shares, the batch parse of a download reply: on a scrypt parent the headers of the batch are
hashed together on threads, with exactly the results and the errors of parsing the records one by one."""
import copy
import types

import pytest

from p2pool.bitcoin import hashes
from p2pool.config import load_network
from p2pool.p2p import messages
from p2pool.p2p.protocol import INVALID_SHARE, Misbehaviour
from p2pool.p2p.sharesync import ShareSync
from p2pool.sharechain.chain import ShareChain
from p2pool.sharechain.share import Share, ShareDecodeError, ShareMisbehaviour, layout_for
from p2pool.sim.world import simulation_network
from p2pool.testing import testchain

LTC = testchain.easy_network(load_network('litecoin'))
HARD_BITS = 0x1b0404cb     # a share target no test header meets


@pytest.fixture(scope='module')
def ltc_records():
    return [{'type': share.VERSION, 'contents': share.contents_bytes} for share in testchain.mine_chain(LTC, 24)]


def with_contents(record, mutate):
    share = Share(LTC, record['type'], record['contents'])
    contents = copy.deepcopy(share.contents)
    mutate(contents)
    return {'type': record['type'], 'contents': layout_for(record['type'], LTC).contents_type.pack(contents)}


def bad_pow(record):
    return with_contents(record, lambda contents: contents['share_info'].update(bits=HARD_BITS))


def malformed(record):
    return {'type': record['type'], 'contents': record['contents'] + b'\x00'}


def test_a_batch_parses_to_the_shares_of_one_by_one_on_the_pool(ltc_records, monkeypatch):
    monkeypatch.setattr(hashes, 'pow_threads', lambda: 2)
    hashed_slices = []
    real_batch = hashes._scrypt_batch
    monkeypatch.setattr(hashes, '_scrypt_batch',
                        lambda headers: hashed_slices.append(len(headers)) or real_batch(headers))
    chain = ShareChain(LTC, clock=lambda: 1234.0)
    batch = chain.parse_shares(ltc_records, peer_addr=('127.0.0.1', 9))
    assert sorted(hashed_slices) == [12, 12]
    single = [chain.parse_share(record, peer_addr=('127.0.0.1', 9)) for record in ltc_records]
    assert [(s.hash, s.pow_hash, s.header_bytes, s.time_seen, s.peer_addr) for s in batch] == \
        [(s.hash, s.pow_hash, s.header_bytes, s.time_seen, s.peer_addr) for s in single]
    assert [share.pow_hash for share in batch] == [hashes.scrypt_pow_hashlib(share.header_bytes) for share in batch]
    wires = [share.to_wire() for share in single]
    assert [share.hash for share in chain.parse_shares(wires)] == [share.hash for share in single]
    assert chain.parse_shares([]) == []


@pytest.mark.parametrize('first_kind, first, second, expected', [
    ('PoW', 3, 5, ShareMisbehaviour),          # the bad PoW comes first on the wire: a ban, as one by one
    ('malformed', 2, 4, ShareDecodeError),     # the malformed record comes first: a disconnect
    ('PoW', 0, 20, ShareMisbehaviour),
])
def test_the_first_bad_record_decides_the_error(ltc_records, first_kind, first, second, expected):
    records = list(ltc_records)
    spoil = {'PoW': bad_pow, 'malformed': malformed}
    records[first] = spoil[first_kind](records[first])
    records[second] = spoil['malformed' if first_kind == 'PoW' else 'PoW'](records[second])
    chain = ShareChain(LTC, clock=lambda: 0.0)
    with pytest.raises(ShareDecodeError) as batch_error:
        chain.parse_shares(records)
    with pytest.raises(ShareDecodeError) as single_error:
        for record in records:
            chain.parse_share(record)
    assert type(batch_error.value) is type(single_error.value) and str(batch_error.value) == str(single_error.value)
    assert isinstance(batch_error.value, expected)
    assert isinstance(batch_error.value, ShareMisbehaviour) == (first_kind == 'PoW')


def test_share_sync_turns_batch_errors_into_a_ban_or_a_disconnect(ltc_records):
    sync = ShareSync(types.SimpleNamespace(chain=ShareChain(LTC, clock=lambda: 0.0)))
    peer = types.SimpleNamespace(addr=('127.0.0.1', 9333))
    obsolete = {'type': 16, 'contents': b'skipped before parsing'}
    assert [s.hash for s in sync.parse_shares(peer, [obsolete] + ltc_records[:3])] == \
        [Share(LTC, r['type'], r['contents']).hash for r in ltc_records[:3]]
    with pytest.raises(Misbehaviour) as ban:
        sync.parse_shares(peer, ltc_records[:2] + [bad_pow(ltc_records[2])])
    assert ban.value.kind == INVALID_SHARE and 'PoW' in str(ban.value)
    with pytest.raises(messages.DecodeError):
        sync.parse_shares(peer, ltc_records[:2] + [malformed(ltc_records[2])])


def test_the_simulator_scaled_pow_holds_in_batches():
    parent = simulation_network('litecoin').PARENT
    headers = [bytes([index]) * 80 for index in range(20)]
    assert parent.pow_hashes(headers) == [parent.pow_hash(header) for header in headers]
