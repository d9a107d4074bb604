"""Litecoin Core templates and MWEB blocks without a daemon: the answers measured on litecoind
0.21.2.1 (tests/vectors/litecoin_mweb.json) parsed, and the measured block rebuilt byte for byte."""
import json
from pathlib import Path

import pytest

from p2pool.bitcoin import data, rpc
from p2pool.bitcoin import serialize as s
from p2pool.bitcoin.blocks import block_from_template, serialize_block
from p2pool.bitcoin.template import (
    TemplateError, TemplateSource, is_mweb_flagged, parse_template, rules_from_refusal)
from p2pool.config import load_network
from p2pool.testing.jsonrpc_server import JsonRpcFault, JsonRpcTestServer
from twisted_helpers import reactor, run_in_reactor  # noqa: F401 (fixture)

VECTORS = json.loads((Path(__file__).parent / 'vectors' / 'litecoin_mweb.json').read_text())


def measured_template():
    return json.loads(json.dumps(VECTORS['template']))


def test_rules_are_learned_from_the_refusal():
    assert rules_from_refusal(VECTORS['refusal']) == ['mweb', 'segwit']
    assert rules_from_refusal('getblocktemplate must be called with the segwit rule set') == ['segwit']
    assert rules_from_refusal('Litecoin Core is not connected!') == []


def test_hogex_is_kept_last_and_out_of_the_referenced_transactions():
    answer = measured_template()
    template = parse_template(answer)
    hogex_entry, pegin_entry = answer['transactions'][-1], answer['transactions'][0]
    assert is_mweb_flagged(bytes.fromhex(hogex_entry['data']))
    assert bytes.fromhex(hogex_entry['data'])[4:6] == b'\x00\x08'   # segwit marker, MWEB flag
    assert not is_mweb_flagged(bytes.fromhex(pegin_entry['data']))
    assert len(template.transactions) == 1 and len(template.transaction_keys) == 1
    assert data.txid(template.transactions[0]) == int(pegin_entry['txid'], 16)
    assert template.hogex.raw.hex() == hogex_entry['data']
    assert template.final_txids == [(int(hogex_entry['txid'], 16), int(hogex_entry['hash'], 16))]
    assert template.mweb.hex() == answer['mweb']
    assert template.default_witness_commitment.hex() == answer['default_witness_commitment']
    assert 'mweb' in template.rules and template.segwit


@pytest.mark.parametrize('damage', ['no mweb', 'no hogex', 'hogex not last', 'mweb not hex', 'hogex without txid'])
def test_inconsistent_mweb_templates_are_refused(damage):
    answer = measured_template()
    if damage == 'no mweb':
        del answer['mweb']
    elif damage == 'no hogex':
        answer['transactions'].pop()
    elif damage == 'hogex not last':
        answer['transactions'].reverse()
    elif damage == 'mweb not hex':
        answer['mweb'] = 'zz'
    else:
        del answer['transactions'][-1]['txid']
    with pytest.raises(TemplateError):
        parse_template(answer)


def measured_block_parts():
    raw = bytes.fromhex(VECTORS['block'])
    header, pos = data.header_type.read(raw, 0)
    count, pos = s.VarInt.read(raw, pos)
    coinbase, pos = data.tx_type.read(raw, pos)
    return header, coinbase, count


def test_the_measured_mweb_block_is_rebuilt_byte_for_byte():
    template = parse_template(measured_template())
    header, coinbase, count = measured_block_parts()
    assert count == 3     # coinbase, peg-in, HogEx
    block = block_from_template(header, coinbase, template)
    assert block is not None, 'merkle root of coinbase + template transactions + HogEx'
    raw = serialize_block(block, segwit=True)
    assert raw.hex() == VECTORS['block']
    assert raw.endswith(b'\x01' + template.mweb)


def test_a_header_for_other_transactions_is_not_assembled():
    template = parse_template(measured_template())
    header, coinbase, _ = measured_block_parts()
    assert block_from_template(dict(header, merkle_root=header['merkle_root'] ^ 1), coinbase, template) is None


def test_source_learns_the_required_rules_and_keeps_them(reactor):
    """A Litecoin Core-like double: refuses (-8) until asked with mweb and segwit, then serves."""
    requests = []

    def getblocktemplate(request):
        requests.append(request)
        if sorted(request.get('rules', [])) != ['mweb', 'segwit']:
            raise JsonRpcFault(-8, VECTORS['refusal'])
        return measured_template()
    with JsonRpcTestServer({'getblocktemplate': getblocktemplate}) as server:
        client = rpc.RpcClient('127.0.0.1', server.port, server.user, server.password)
        source = TemplateSource(client, load_network('litecoin_regtest'), longpoll=False)
        template = run_in_reactor(source.start)
        run_in_reactor(source.refresh)
        run_in_reactor(source.stop)
    assert template is not None and template.hogex is not None
    assert [request.get('rules') for request in requests] == [['segwit'], ['segwit', 'mweb'], ['segwit', 'mweb']]
    assert source.contact is True
