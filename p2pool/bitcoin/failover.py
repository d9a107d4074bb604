"""Several bitcoinds behind one face: work from the best healthy one, blocks to all of them.

    group = BitcoindGroup([('primary', bridge), ('fallback 1', other_bridge)], net)
    yield group.start(checks)        # the primary is started like a lone BitcoindBridge
    group.source                     # a TemplateSource look-alike (current, changed, ...)
    group.submitter.submit(block, segwit=..., legacy=...)   # to every reachable daemon
    group.states()                   # DaemonState per daemon, for /metrics and the console

A group quacks like one BitcoindBridge (rpc, p2p, heights, source, submitter, stop),
so the node does not care how many daemons it has. Every daemon is probed with
getblockchaininfo every PROBE_INTERVAL seconds (tip height, chain work, RPC errors)
and keeps its own TemplateSource with its own long poll. A daemon is healthy when it
passed the start-up checks, its last probe answered and its template is fresh; work
comes from the healthy daemon with the most chain work (the first listed wins a
tie, so the primary is used again as soon as it is back on the same tip). A daemon
that is killed fails its long poll at once, so the switch takes about one probe.
"""
import logging
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, task

from p2pool.bitcoin.events import Event
from p2pool.bitcoin.rpc import RpcFailure

log = logging.getLogger(__name__)

PROBE_INTERVAL = 1.0
LONE_PROBE_INTERVAL = 10.0      # with one daemon there is nothing to fail over to: probe for the figures only
PROBE_TIMEOUT = 2.0
TEMPLATE_MAX_AGE = 60.0
SWITCH_DELAY = 2.0


@dataclass(frozen=True)
class DaemonAddress:
    host: str
    rpc_port: int
    p2p_port: int
    user: str
    password: str
    use_ssl: bool


def parse_daemon_url(url: str, default_p2p_port: int) -> DaemonAddress:
    """`http://USER:PASS@HOST:RPCPORT/[?p2p=PORT]` (https too); raises ValueError with a one-line reason."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        raise ValueError('%r is not an http://USER:PASS@HOST:RPCPORT/ URL' % (url,))
    if parts.username is None or parts.password is None:
        raise ValueError('the URL of %s must contain the RPC user and password' % parts.hostname)
    try:
        rpc_port = parts.port
    except ValueError:
        raise ValueError('the URL of %s has an invalid port' % parts.hostname) from None
    if rpc_port is None:
        raise ValueError('the URL of %s must name the RPC port' % parts.hostname)
    query = urllib.parse.parse_qs(parts.query)
    p2p_port = default_p2p_port
    if 'p2p' in query:
        text = query['p2p'][-1]
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise ValueError('the URL of %s has an invalid p2p port %r' % (parts.hostname, text))
        p2p_port = int(text)
    unknown = set(query) - {'p2p'}
    if unknown:
        raise ValueError('the URL of %s has unknown parameters %s' % (parts.hostname, ', '.join(sorted(unknown))))
    return DaemonAddress(parts.hostname, rpc_port, p2p_port, urllib.parse.unquote(parts.username),
                         urllib.parse.unquote(parts.password), parts.scheme == 'https')


@dataclass
class DaemonState:
    """What the node knows of one bitcoind."""
    name: str
    endpoint: str
    checked: bool = False          # passed the start-up checks
    reachable: bool = False        # the last probe answered
    contact: bool = True           # its template source has contact (False after a failed fetch)
    rpc_errors: int = 0            # failed probes and template fetches in a row
    last_error: str | None = None
    tip_height: int | None = None
    chain_work: int = 0
    template_age: float | None = None
    healthy: bool = False
    active: bool = False

    @property
    def status(self) -> str:
        if self.active:
            return 'active'
        if self.healthy:
            return 'standby'
        if not self.reachable or not self.contact:
            return 'down'
        return 'unchecked' if not self.checked else 'stale'


class _Member:
    def __init__(self, name: str, bridge: Any):
        self.name, self.bridge = name, bridge
        self.state = DaemonState(name, bridge.rpc.endpoint)
        self.checking = False
        self.probing = False


class FailoverSource:
    """The TemplateSource of whichever daemon is active; `changed` fires on its templates and on a switch."""

    def __init__(self, group: 'BitcoindGroup'):
        self.group = group
        self.changed = Event()
        self.contact_changed = Event()
        self.contact: bool | None = None

    @property
    def _active(self) -> Any:
        return self.group.active.bridge.source

    @property
    def current(self) -> Any:
        return self._active.current

    @property
    def legacy(self) -> bool:
        return bool(getattr(self._active, 'legacy', False))

    @property
    def last_latency(self) -> float | None:
        return getattr(self._active, 'last_latency', None)

    @property
    def last_error(self) -> str | None:
        return getattr(self._active, 'last_error', None)

    def is_stale(self, now: float | None = None) -> bool:
        return bool(self._active.is_stale(now))

    def refresh(self) -> Any:
        return self._active.refresh()

    def _set_contact(self, ok: bool) -> None:
        if ok != self.contact:
            self.contact = ok
            self.contact_changed.happened(ok)


class GroupHeights:
    """Parent-block heights as the active daemon knows them (any daemon's answer when it does not)."""

    def __init__(self, group: 'BitcoindGroup'):
        self.group = group

    def _ordered(self) -> list[Any]:
        active = self.group.active
        return [active.bridge.heights] + [m.bridge.heights for m in self.group.members if m is not active]

    def known(self, block_hash: int) -> Any:
        for heights in self._ordered():
            value = heights.known(block_hash)
            if value is not None:
                return value
        return None

    def rel_height(self, block_hash: int, best_block_hash: int | None = None) -> Any:
        return self.group.active.bridge.heights.rel_height(block_hash, best_block_hash)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.group.active.bridge.heights, name)


class GroupSubmitter:
    """A found block goes to every reachable daemon; the Deferred is the active daemon's answer."""

    def __init__(self, group: 'BitcoindGroup'):
        self.group = group

    def submit(self, block: dict[str, Any], segwit: bool = False, expect_valid: bool = True,
               legacy: bool = False) -> Any:
        active = self.group.active
        answer = None
        for member in self.group.members:
            if member is not active and not member.state.reachable:
                continue
            own_legacy = bool(getattr(member.bridge.source, 'legacy', legacy))
            d = member.bridge.submitter.submit(block, segwit=segwit, expect_valid=expect_valid, legacy=own_legacy)
            if member is active:
                answer = d
            else:
                d.addErrback(lambda failure, name=member.name: log.warning(
                    'submitting the block to %s failed: %s', name, failure.getErrorMessage()))
        return answer


class BitcoindGroup:
    """One or more BitcoindBridges; see the module docstring."""

    def __init__(self, members: list[tuple[str, Any]], net: Any, clock: Callable[[], float] = time.time,
                 probe_interval: float | None = None, reactor: Any = None):
        if reactor is None:
            from twisted.internet import reactor as default_reactor
            reactor = default_reactor
        if not members:
            raise ValueError('a bitcoind group needs at least one daemon')
        if probe_interval is None:
            probe_interval = PROBE_INTERVAL if len(members) > 1 else LONE_PROBE_INTERVAL
        self.net, self.clock, self.probe_interval = net, clock, probe_interval
        self._reactor: Any = reactor
        self.members = [_Member(name, bridge) for name, bridge in members]
        self.active = self.members[0]
        self.active.state.active = True
        self.source = FailoverSource(self)
        self.heights = GroupHeights(self)
        self.submitter = GroupSubmitter(self)
        self.active_changed = Event()
        self._check: Callable[[Any], Any] | None = None
        self._better_since: tuple[_Member, float] | None = None
        self._probe_loop: task.LoopingCall | None = None
        for member in self.members:
            member.bridge.source.changed.watch(lambda template, m=member: self._template_changed(m, template))
            member.bridge.source.contact_changed.watch(lambda ok, m=member: self._contact_changed(m, ok))

    # --- the face of one bridge ------------------------------------------------------

    @property
    def rpc(self) -> Any:
        return self.active.bridge.rpc

    @property
    def p2p(self) -> Any:
        return self.active.bridge.p2p

    def submit_block(self, block: dict[str, Any], segwit: bool) -> Any:
        """A block our miners found: to every reachable daemon (each the way it gives templates)."""
        return self.submitter.submit(block, segwit=segwit)

    def tip(self) -> int | None:
        """The active daemon's best block (its current template's parent), or None."""
        template = self.source.current
        return template.previous_block if template is not None else None

    # --- life cycle -----------------------------------------------------------------

    @defer.inlineCallbacks
    def start(self, check: Callable[[Any], Any], p2p_timeout: float = 30) -> Any:
        """`check(rpc)` is the start-up check (a Deferred failing with BitcoindCheckError). The
        primary must pass it now; a fallback that cannot be reached yet is checked when it answers,
        one that answers and fails stops the start. Fires with the primary's first template."""
        self._check = check
        primary = self.members[0]
        for member in self.members[1:]:
            try:
                yield member.bridge.rpc.call('getblockchaininfo', timeout=PROBE_TIMEOUT)
            except RpcFailure as e:     # checked once it answers (_probe)
                log.warning('bitcoind %s (%s) cannot be reached yet: %s', member.name, member.state.endpoint, e)
                continue
            yield check(member.bridge.rpc)
            member.state.checked = member.state.reachable = True
        primary.state.checked = primary.state.reachable = True     # the caller checked it
        template = yield primary.bridge.start(p2p_timeout=p2p_timeout)
        for member in self.members[1:]:
            member.bridge.p2p.start()
            member.bridge.source.start()
        loop = self._probe_loop = task.LoopingCall(self._probe_all)
        loop.clock = self._reactor
        loop.start(self.probe_interval, now=True)
        return template

    def stop(self) -> None:
        if self._probe_loop is not None and self._probe_loop.running:
            self._probe_loop.stop()
        for member in self.members:
            try:
                member.bridge.stop()
            except Exception:
                log.exception('error while stopping bitcoind %s', member.name)

    # --- health -------------------------------------------------------------------------

    def _probe_all(self) -> None:
        for member in self.members:
            if not member.probing:
                self._probe(member)
        self._choose()

    @defer.inlineCallbacks
    def _probe(self, member: _Member) -> Any:
        member.probing = True
        state = member.state
        try:
            info = yield member.bridge.rpc.call('getblockchaininfo', timeout=PROBE_TIMEOUT)
            state.tip_height = int(info['blocks'])
            state.chain_work = int(info.get('chainwork') or '0', 16)
            state.reachable, state.rpc_errors, state.last_error = True, 0, None
        except (RpcFailure, KeyError, TypeError, ValueError) as e:
            if state.reachable or state.rpc_errors == 0:
                log.warning('bitcoind %s (%s) does not answer: %s', member.name, state.endpoint, e)
            state.reachable = False
            state.rpc_errors += 1
            state.last_error = str(e).splitlines()[0] if str(e) else type(e).__name__
        finally:
            member.probing = False
        if state.reachable and not state.checked and not member.checking:
            yield self._run_check(member)
        self._choose()

    @defer.inlineCallbacks
    def _run_check(self, member: _Member) -> Any:
        member.checking = True
        try:
            if self._check is not None:
                yield self._check(member.bridge.rpc)
            member.state.checked = True
            log.info('bitcoind %s (%s) passed the start-up checks', member.name, member.state.endpoint)
        except Exception as e:
            member.state.last_error = str(e)
            log.warning('bitcoind %s (%s) is not usable: %s', member.name, member.state.endpoint, e)
        finally:
            member.checking = False

    def _template_changed(self, member: _Member, template: Any) -> None:
        if member is self.active:
            self.source.changed.happened(template)
        else:
            self._choose()

    def _contact_changed(self, member: _Member, ok: bool) -> None:
        if not ok:
            member.state.rpc_errors += 1
        self._choose()

    def _healthy(self, member: _Member, now: float) -> bool:
        state, source = member.state, member.bridge.source
        template = source.current
        state.contact = source.contact is not False
        state.template_age = None if template is None else max(0.0, now - template.last_update)
        state.healthy = bool(state.checked and state.reachable and source.contact is not False
                             and template is not None and state.template_age is not None
                             and state.template_age < TEMPLATE_MAX_AGE)
        return state.healthy

    def _choose(self) -> bool:
        """Pick the active daemon; True when it changed (then `changed` fired with its template).

        A failed active daemon is left at once; a healthy one only after another has been
        the better choice (more chain work, or the same and listed first) for SWITCH_DELAY
        seconds, so that a block reaching the daemons a moment apart does not flip work back
        and forth."""
        now = self.clock()
        healthy = [member for member in self.members if self._healthy(member, now)]
        self.source._set_contact(bool(healthy) or self.active.bridge.source.contact is not False)
        if not healthy:
            return False
        best_work = max(member.state.chain_work for member in healthy)
        chosen = next(member for member in healthy if member.state.chain_work == best_work)
        if chosen is self.active:
            self._better_since = None
            return False
        failed = self.active not in healthy
        if not failed:
            if self._better_since is None or self._better_since[0] is not chosen:
                self._better_since = (chosen, now)
            if now - self._better_since[1] < SWITCH_DELAY:
                return False
        self._better_since = None
        previous, self.active = self.active, chosen
        previous.state.active, chosen.state.active = False, True
        if failed:
            log.warning('bitcoind: work now comes from %s (%s) because %s (%s) is %s: %s', chosen.name,
                        chosen.state.endpoint, previous.name, previous.state.endpoint, previous.state.status,
                        previous.state.last_error or previous.bridge.source.last_error or 'no fresh template')
        else:
            log.info('bitcoind: work now comes from %s (%s) instead of %s (%s)', chosen.name,
                     chosen.state.endpoint, previous.name,
                     'the primary is back' if chosen is self.members[0] else 'it has less chain work')
        self.active_changed.happened(chosen.name)
        template = chosen.bridge.source.current
        if template is not None:
            self.source.changed.happened(template)
        return True

    def states(self) -> list[DaemonState]:
        now = self.clock()
        for member in self.members:
            self._healthy(member, now)
        return [member.state for member in self.members]
