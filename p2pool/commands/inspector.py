"""The inspector: decode parent-chain and sharechain data and print it as JSON.

    python -m p2pool.commands.inspector [--net NAME|PATH] header HEX
    p2pool inspect [--net NAME|PATH] tx|block|address|script|share ARG
    p2pool inspect [--net NAME|PATH] verify FILE

Bad input prints one line on stderr and exits with status 2 (never a traceback).
"""
import argparse
import json
import sys
from typing import Any

from p2pool.bitcoin import address as addresses
from p2pool.bitcoin import data
from p2pool.bitcoin.serialize import DecodeError
from p2pool.commands import inspector_shares as inspect_shares
from p2pool.commands.inspector_shares import InspectError as _ShareInspectError


class InspectError(Exception):
    """Input the inspector cannot decode; the message is shown to the user."""


def _hex(value):
    return '%064x' % value


def _parse_hex(text):
    try:
        return bytes.fromhex(text.strip())
    except ValueError:
        raise InspectError('not a hex string') from None


def _decode(wire_type, raw, what):
    try:
        return wire_type.unpack(raw)
    except DecodeError as e:
        raise InspectError('not a valid %s: %s' % (what, e)) from None


def describe_header(header, net) -> dict[str, Any]:
    raw = data.header_type.pack(header)
    return {
        'hash': _hex(data.header_hash(header)),
        'pow_hash': _hex(net.PARENT.pow_hash(raw)),
        'version': header['version'],
        'previous_block': _hex(header['previous_block'] or 0),
        'merkle_root': _hex(header['merkle_root']),
        'timestamp': header['timestamp'],
        'bits': '%08x' % header['bits'],
        'target': _hex(data.bits_to_target(header['bits'])),
        'difficulty': data.target_to_difficulty(data.bits_to_target(header['bits'])),
        'nonce': header['nonce'],
    }


def describe_tx(tx, net) -> dict[str, Any]:
    outputs = []
    for tx_out in tx['tx_outs']:
        outputs.append({'value': tx_out['value'], 'script': tx_out['script'].hex(),
                        'address': addresses.script_to_address(tx_out['script'], net.PARENT)})
    inputs = []
    for i, tx_in in enumerate(tx['tx_ins']):
        prev = tx_in['previous_output']
        entry = {'previous_output': None if prev is None else {'txid': _hex(prev['hash']), 'index': prev['index']},
                 'script': tx_in['script'].hex(),
                 'sequence': 0xffffffff if tx_in['sequence'] is None else tx_in['sequence']}
        if data.is_segwit_form(tx):
            entry['witness'] = [item.hex() for item in tx['witness'][i]]
        inputs.append(entry)
    return {'txid': _hex(data.txid(tx)), 'wtxid': _hex(data.wtxid(tx)), 'version': tx['version'],
            'segwit': data.is_segwit_form(tx), 'inputs': inputs, 'outputs': outputs, 'lock_time': tx['lock_time']}


def cmd_header(arg, net) -> dict[str, Any]:
    raw = _parse_hex(arg)
    if len(raw) != 80:
        raise InspectError('a block header is 80 bytes, got %d' % len(raw))
    return describe_header(_decode(data.header_type, raw, 'block header'), net)


def cmd_tx(arg, net) -> dict[str, Any]:
    return describe_tx(_decode(data.tx_type, _parse_hex(arg), 'transaction'), net)


def cmd_block(arg, net) -> dict[str, Any]:
    block = _decode(data.block_type, _parse_hex(arg), 'block')
    txids = [data.txid(tx) for tx in block['txs']]
    computed = data.merkle_hash(txids)
    return {'header': describe_header(block['header'], net), 'tx_count': len(txids),
            'merkle_root_ok': computed == block['header']['merkle_root'],
            'computed_merkle_root': _hex(computed), 'txids': [_hex(t) for t in txids]}


def cmd_address(arg, net) -> dict[str, Any]:
    try:
        script = addresses.address_to_script(arg.strip(), net.PARENT)
        kind = addresses.address_kind(arg.strip(), net.PARENT)
    except addresses.AddressError as e:
        raise InspectError('not a valid %s address: %s' % (net.NAME, e)) from None
    return {'address': arg.strip(), 'type': kind, 'script': script.hex()}


def cmd_script(arg, net) -> dict[str, Any]:
    script = _parse_hex(arg)
    return {'script': script.hex(), 'address': addresses.script_to_address(script, net.PARENT)}


COMMANDS = {'header': cmd_header, 'tx': cmd_tx, 'block': cmd_block, 'address': cmd_address, 'script': cmd_script}


def _register_sharechain_commands():
    """share and verify (p2pool.commands.inspector_shares) decode with the sharechain."""
    COMMANDS.update(inspect_shares.COMMANDS)


class _OneLineErrorParser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, '%s: error: %s\n' % (self.prog, message))


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineErrorParser(prog='p2pool inspect', description='Decode chain data and print JSON.')
    parser.add_argument('--net', default='bitcoin', help='network name or path to a network TOML file')
    parser.add_argument('command', choices=sorted(COMMANDS))
    parser.add_argument('argument', help='hex data, an address, or a file (verify)')
    return parser


def main(argv=None) -> int | str | None:
    _register_sharechain_commands()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2, already printed as one line)
        return e.code
    from p2pool import config
    try:
        net = config.load_network(args.net)
        result = COMMANDS[args.command](args.argument, net)
    except config.NetworkConfigError as e:
        print('p2pool inspect: %s' % e, file=sys.stderr)
        return 2
    except (InspectError, _ShareInspectError, OSError) as e:
        print('p2pool inspect: %s' % e, file=sys.stderr)
        return 2
    try:
        if isinstance(result, list):  # verify prints one JSON line per record
            for line in result:
                print(json.dumps(line, sort_keys=True))
        else:
            print(json.dumps(result, indent=2, sort_keys=True))
        sys.stdout.flush()
    except BrokenPipeError:  # `p2pool inspect ... | head` closed the pipe early
        sys.stderr.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
