"""A Stratum connection's state as JSON, so that another process can go on serving it (takeover).

    state = export_connections(stratum_factory)        # in the old process, connections frozen
    restore_connection(stratum_factory, entry, bases)   # in the new one, per adopted connection

What travels: the session (extranonce1, id, vardiff state, worker name, version-rolling
mask) and every job the miner may still submit against. A job references a BaseWork
(one generated gentx): its work record, its share_info, the share version, the other
transactions' keys and bytes (for the block), the segwit flags, and the pseudoshares and
blocks it already took (for duplicates). From those the new process rebuilds a BaseWork
whose get_share makes exactly the share the old one would have made: the gentx bytes
around the coinbase nonce are coinb1 and coinb2 themselves. A job that was the newest
work of the old process counts as on time in the new one until its next new-work
event; older ones are late, as they were. Merged-mining commitments and Litecoin MWEB
data are not carried over: such jobs are dropped (the miner gets new work at once).
"""
import logging
import struct
from dataclasses import asdict, replace
from typing import Any

from p2pool.bitcoin import data as bitcoin_data
from p2pool.bitcoin.hashes import hash256
from p2pool.sharechain.generate import share_from_solved_header
from p2pool.work.bridge import BaseWork, WorkRecord
from p2pool.work.jobs import Job, with_superseded
from p2pool.work.sessions import StratumSession, restore_vardiff, vardiff_state
from p2pool.work.username import parse_username

log = logging.getLogger(__name__)

FORMAT = 1


def encode(value: Any) -> Any:
    """JSON-able form of share_info-like values: bytes as {"$hex": ...}, tuples as lists."""
    if isinstance(value, bytes):
        return {'$hex': value.hex()}
    if isinstance(value, dict):
        return {str(key): encode(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(item) for item in value]
    return value


def decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {'$hex'}:
            return bytes.fromhex(value['$hex'])
        return {key: decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode(item) for item in value]
    return value


class _Template:
    """What BaseWork reads of a template when a block is found: the transactions and the segwit flag."""

    mweb = None

    def __init__(self, transaction_keys: list[int], transactions: list[Any], segwit: bool):
        self.transaction_keys, self.transactions, self.segwit = transaction_keys, transactions, segwit


class _Plan:
    """What share_from_solved_header reads of a SharePlan, rebuilt from a work record."""

    def __init__(self, net: Any, version: int, share_info: dict, other_tx_keys: list[int], coinb1: bytes,
                 coinb2: bytes):
        self.net, self.version, self.share_info, self.other_tx_keys = net, version, share_info, other_tx_keys
        self.coinb1, self.coinb2 = coinb1, coinb2

    def stripped_gentx(self, ref_hash: int, last_txout_nonce: int) -> tuple[bytes, int]:
        raw = self.coinb1 + struct.pack('<Q', last_txout_nonce) + self.coinb2
        return raw, hash256(raw)


def _transferable(base: Any) -> bool:
    return (base.share_version is not None and base.commitment is None
            and getattr(base.template, 'mweb', None) is None)


def export_base(base: Any, current_counter: int) -> dict[str, Any]:
    known = dict(zip(base.template.transaction_keys, base.template.transactions))
    return {
        'record': encode(asdict(base.record)),
        'share_info': encode(base.share_info),
        'version': base.share_version,
        'other_tx_keys': ['%064x' % key for key in base.other_tx_keys],
        'txs': [bitcoin_data.tx_type.pack(known[key]).hex() for key in base.other_tx_keys],
        'segwit': base.segwit,
        'template_segwit': bool(base.template.segwit),
        'current': base.counter == current_counter,
        'seen': ['%064x' % h for h in base.seen],
        'blocks': ['%064x' % h for h in base.blocks],
    }


def restore_base(bridge: Any, state: dict[str, Any]) -> BaseWork:
    record = WorkRecord(**decode(state['record']))
    share_info = decode(state['share_info'])
    keys = [int(key, 16) for key in state['other_tx_keys']]
    txs = [bitcoin_data.tx_type.unpack(bytes.fromhex(raw)) for raw in state['txs']]
    plan = _Plan(bridge.net, int(state['version']), share_info, keys, record.coinb1, record.coinb2)

    def get_share(header: Any, last_txout_nonce: int = 0, time_seen: float = 0, peer_addr: Any = None) -> Any:
        return share_from_solved_header(plan, header, last_txout_nonce, time_seen, peer_addr)  # type: ignore[arg-type]
    base = BaseWork(bridge, record, _Template(keys, txs, bool(state['template_segwit'])), share_info, keys,
                    get_share, None, bool(state['segwit']))
    base.share_version = plan.version
    base.counter = bridge.new_work_counter if state['current'] else -1
    base.seen = {int(h, 16) for h in state['seen']}
    base.blocks = {int(h, 16) for h in state['blocks']}
    return base


def export_connection(connection: Any, bases: dict[int, dict[str, Any]], current_counter: int) -> dict[str, Any]:
    """The state of one frozen StratumProtocol; its jobs' BaseWorks are added to `bases` (by id)."""
    jobs = []
    for job_id, job, superseded in with_superseded(connection.jobs):
        if not _transferable(job.base):
            continue
        key = id(job.base)
        if key not in bases:
            bases[key] = export_base(job.base, current_counter)
        entry = {'id': job_id, 'base': str(key), 'target': job.target, 'issued': job.issued,
                 'superseded': superseded}
        if replace(job.base.record, share_target=job.record.share_target) == job.record:
            entry['share_target'] = job.record.share_target      # the usual case: the base's record but this
        else:
            entry['record'] = encode(asdict(job.record))
        jobs.append(entry)
    session = connection.session
    return {
        'extranonce1': connection.extranonce1.hex(),
        'session': None if session is None else {'id': session.session_id, 'state': session.state},
        'subscribed': connection.subscribed,
        'worker': connection.username.raw if connection.username is not None else None,
        'vardiff': vardiff_state(connection.vardiff),
        'version_mask': connection.version_mask,
        'bad_messages': connection.bad_messages,
        'connected_at': connection.connected_at,
        'jobs': jobs,
    }


def export_connections(factory: Any, connections: list[Any]) -> dict[str, Any]:
    bases: dict[int, dict[str, Any]] = {}
    counter = factory.bridge.new_work_counter
    entries = [export_connection(connection, bases, counter) for connection in connections]
    return {'format': FORMAT, 'connections': entries, 'bases': {str(key): base for key, base in bases.items()}}


def restore_bases(bridge: Any, states: dict[str, dict[str, Any]]) -> dict[str, BaseWork]:
    bases = {}
    for key, state in states.items():
        try:
            bases[key] = restore_base(bridge, state)
        except (KeyError, TypeError, ValueError) as e:     # its jobs are dropped; the miner gets new work
            log.warning('a handed-over job could not be rebuilt (%s); its miners get new work', e)
    return bases


def restore_connection(protocol: Any, entry: dict[str, Any], bases: dict[str, BaseWork]) -> None:
    """Put a handed-over state into a fresh StratumProtocol (before it is connected)."""
    protocol.extranonce1 = bytes.fromhex(entry['extranonce1'])
    session = entry.get('session')
    if session is not None:
        protocol.session = protocol.sessions.adopt(
            StratumSession(session['id'], protocol.extranonce1, dict(session.get('state') or {})))
    protocol.subscribed = bool(entry['subscribed'])
    if entry.get('worker') is not None:
        protocol.username = parse_username(entry['worker'])
        protocol.vardiff.set_fixed(protocol.username.desired_pseudoshare_target)
    restore_vardiff(protocol.vardiff, entry.get('vardiff') or {})
    protocol.version_mask = entry.get('version_mask')
    protocol.bad_messages = int(entry.get('bad_messages') or 0)
    for job in entry.get('jobs', []):
        base = bases.get(job['base'])
        if base is None:
            continue
        if 'record' in job:
            record = WorkRecord(**decode(job['record']))
        else:
            record = replace(base.record, share_target=int(job['share_target']))
        protocol.jobs[job['id']] = Job(record, base, int(job['target']), float(job['issued']), job.get('superseded'))
        protocol.last_block = record.previous_block
