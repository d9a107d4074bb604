"""Litecoin Core without a daemon: the answers measured on litecoind 0.21.2.1
(tests/vectors/litecoin_mweb.json) parsed and the measured MWEB block rebuilt byte for byte,
rules learned from the refusal, the one-line upgrade message, and the legacy stand-in that
lets version-17 shares pay a node whose `-a` is bech32."""
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


def test_an_old_litecoin_core_is_told_to_upgrade_in_one_line(reactor):
    """Litecoin Core 0.18.1 (version 180100) on litecoin mainnet: one line, naming 0.21.2."""
    genesis = '12a765e31ffd4059bada1e25190f6e98c99d9714d334efa41a195a7e7e04bfe2'
    handlers = {
        'getnetworkinfo': lambda: {'version': 180100},
        'getblockchaininfo': lambda: {'chain': 'main', 'blocks': 1, 'headers': 1, 'initialblockdownload': False,
                                      'softforks': {name: {} for name in ('bip65', 'csv', 'segwit')}},
        'getblockhash': lambda height: genesis,
        'getblockheader': lambda block_hash: {'height': 0},
    }
    with JsonRpcTestServer(handlers) as server:
        client = rpc.RpcClient('127.0.0.1', server.port, server.user, server.password)
        with pytest.raises(rpc.BitcoindCheckError) as caught:
            run_in_reactor(rpc.check_bitcoind, client, load_network('litecoin'))
    message = str(caught.value)
    assert '\n' not in message
    assert message.endswith('is too old (version 180100): Litecoin Core too old for MWEB blocks: '
                            'upgrade to Litecoin Core 0.21.2 or newer')


class WalletDouble:
    """`call` like RpcClient: getnewaddress answers `address` (recording its arguments)."""

    def __init__(self, address):
        self.address, self.calls = address, []

    def call(self, method, *params):
        from twisted.internet import defer
        self.calls.append((method, params))
        return defer.succeed(self.address)


def test_a_bech32_operator_address_gets_a_legacy_stand_in_for_version_17():
    from p2pool.app.payout import resolve_v17_fallback
    from p2pool.work.username import PayeeResolver, parse_username
    net = load_network('litecoin_regtest')
    legacy = 'mk6CK7KFy8sFFya2A2mBkR2J9ks4avFkCd'          # measured: getnewaddress "" legacy
    bech32 = 'rltc1qg638a06x3u3tcwm2ede5fp0v3gj6vwgywetlx6'  # measured: getnewaddress "" bech32
    wallet = WalletDouble(legacy)
    results = []
    resolve_v17_fallback(wallet, net, bech32).addCallback(results.append)
    assert results == [legacy] and wallet.calls == [('getnewaddress', ('p2pool', 'legacy'))]
    resolve_v17_fallback(WalletDouble(legacy), net, legacy).addCallback(results.append)
    assert results[-1] is None      # a legacy -a needs no stand-in
    resolver = PayeeResolver(net.PARENT, bech32, early_address=legacy)
    assert resolver.payee(parse_username('not-an-address'), 17) == legacy
    assert resolver.payee(parse_username('not-an-address'), 35) == bech32
    assert resolver.payee(parse_username(bech32), 35) == bech32
