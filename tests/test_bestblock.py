"""Mining ahead of bitcoind on a peer's newer block (worker.md §1.3, p2p.md §4.9)."""

from p2pool.bitcoin import data
from p2pool.bitcoin.template import Template
from p2pool.config import load_network
from p2pool.events import Event
from p2pool.work.bestblock import CombinedWorkSource

NET = load_network('bsv_regtest')
REGTEST_BITS = 0x207fffff
NOW = 1_700_000_000


def template(previous_block, height=200):
    return Template(version=0x20000000, previous_block=previous_block, height=height, bits=REGTEST_BITS,
                    time=NOW, subsidy=5_000_000_123, coinbaseflags=b'\x01\x02',
                    transactions=[{'fake': 1}], transaction_keys=[7], transaction_fees=[123], rules=[],
                    last_update=NOW - 1)


def header(previous_block, nonce=0, bits=REGTEST_BITS):
    """A header on `previous_block` whose PoW meets `bits` (searching the nonce)."""
    while True:
        candidate = {'version': 0x20000000, 'previous_block': previous_block, 'merkle_root': 12345,
                     'timestamp': NOW + 5, 'bits': bits, 'nonce': nonce}
        if data.header_hash(candidate) <= data.bits_to_target(bits):
            return candidate
        nonce += 1


class FakeBitcoindSource:
    """Stands in for TemplateSource: `current` and `changed`, nothing else."""

    def __init__(self, current):
        self.current, self.changed, self.contact = current, Event(), True


def combined(tip_header):
    source = FakeBitcoindSource(template(data.header_hash(tip_header)))
    work = CombinedWorkSource(source, NET, clock=lambda: NOW)
    sent = []
    work.best_header_changed.watch(sent.append)
    return source, work, sent


def test_bitcoinds_tip_is_adopted_and_announced_without_changing_the_work():
    tip = header(previous_block=1)
    source, work, sent = combined(tip)
    assert work.offer_header(tip) is True
    assert sent == [tip] and work.current is source.current and work.contact is True


def test_a_peer_header_on_bitcoinds_tip_turns_work_into_an_empty_block_on_it():
    tip = header(previous_block=1)
    source, work, sent = combined(tip)
    work.offer_header(tip)
    newer = header(previous_block=data.header_hash(tip))
    changes = []
    work.changed.watch(changes.append)
    assert work.offer_header(newer) is True
    current = work.current
    assert current.previous_block == data.header_hash(newer) and current.height == 201
    assert current.transactions == [] and current.coinbaseflags == b'' and current.bits == newer['bits']
    assert current.subsidy == NET.PARENT.subsidy(200)     # SUBSIDY_FUNC(template height), as [jt] does
    assert current.time == NOW + 6                        # max(now + 0.5, header time + 1)
    assert current.last_update == source.current.last_update
    assert sent == [tip, newer] and changes and changes[-1].previous_block == data.header_hash(newer)


def test_headers_that_do_not_follow_the_rules_are_ignored():
    tip = header(previous_block=1)
    source, work, sent = combined(tip)
    work.offer_header(tip)
    newer = header(previous_block=data.header_hash(tip))
    work.offer_header(newer)
    # a sibling of the adopted header: the best header is no longer the tip, so it is refused
    assert work.offer_header(header(previous_block=data.header_hash(tip), nonce=newer['nonce'] + 1)) is False
    # bitcoind's tip again while the best header extends it: refused too
    assert work.offer_header(tip) is False
    assert sent == [tip, newer]


def test_a_header_without_enough_work_for_bitcoinds_target_is_ignored():
    tip = header(previous_block=1)
    source, work, sent = combined(tip)
    source.current = dataclass_replace(source.current, bits=0x1d00ffff)
    weak = header(previous_block=data.header_hash(tip))
    assert data.header_hash(weak) > data.bits_to_target(0x1d00ffff)
    assert work.offer_header(weak) is False and sent == []


def test_when_bitcoind_catches_up_its_own_template_is_used_again():
    tip = header(previous_block=1)
    source, work, sent = combined(tip)
    work.offer_header(tip)
    newer = header(previous_block=data.header_hash(tip))
    work.offer_header(newer)
    source.current = template(data.header_hash(newer), height=201)
    source.changed.happened(source.current)
    assert work.current is source.current            # the adopted header is now bitcoind's tip
    after = header(previous_block=data.header_hash(newer))
    assert work.offer_header(after) is True          # and can be extended again
    # bitcoind moves elsewhere: the stale adopted header is dropped
    source.current = template(999, height=300)
    source.changed.happened(source.current)
    assert work.best_header is None and work.current is source.current


def dataclass_replace(value, **changes):
    import dataclasses
    return dataclasses.replace(value, **changes)


def test_legacy_follows_the_bitcoind_source():
    tip = header(previous_block=1)
    source, work, _ = combined(tip)
    assert work.legacy is False
    source.legacy = True
    assert work.legacy is True
    assert isinstance(work.changed, Event)


def test_the_header_of_each_new_bitcoind_tip_is_asked_for_once_and_offered():
    from twisted.internet import defer
    tip = header(previous_block=1)
    source = FakeBitcoindSource(template(1))
    asked = []

    def get_header(block_hash):
        asked.append(block_hash)
        answer = defer.Deferred()
        answers.append(answer)
        return answer
    answers = []
    work = CombinedWorkSource(source, NET, clock=lambda: NOW, get_header=get_header)
    sent = []
    work.best_header_changed.watch(sent.append)
    source.current = template(data.header_hash(tip))
    source.changed.happened(source.current)
    source.changed.happened(source.current)          # the same tip again: not asked twice
    assert asked == [data.header_hash(tip)] and sent == []
    answers[0].callback(tip)
    assert sent == [tip]                             # offered and adopted: peers hear of it

    newer = header(previous_block=data.header_hash(tip))
    source.current = template(data.header_hash(newer), height=201)
    source.changed.happened(source.current)
    answers[1].errback(defer.TimeoutError('no answer over P2P'))
    source.changed.happened(source.current)          # a failed question is asked again
    assert asked == [data.header_hash(tip), data.header_hash(newer), data.header_hash(newer)]
