"""The operator's commands of `p2pool ctl` and the node's console, over the running node.

`ControlCommands(runner).run(line)` returns (exit status, text): 0 with the answer,
2 with one line for an unknown command or bad arguments, 1 when the node cannot
answer (not started far enough yet). The runner is p2pool.app.main.NodeRunner: the
commands read its web view (the facade of p2pool.web.api), its P2P node, the work
bridge and Stratum factory, and the payout history.
"""
import ipaddress
import logging
import time
from typing import Any, Callable

from p2pool.app.status import format_hash_rate, status_text
from p2pool.bitcoin.data import target_to_difficulty
from p2pool.web.api import WebContext, recent_blocks

COMMAND_NAMES = ('status', 'workers', 'peers', 'bans', 'ban', 'unban', 'loglevel', 'blocks', 'payouts', 'help')
DEFAULT_BAN_SECONDS = 3600.0
LOG_LEVELS = ('debug', 'info', 'warning', 'error')

HELP = """Commands:
  status                 the console status block
  workers                connected miners: name, payout address, hash rate, dead %%, difficulty, remote address,
                         connected since
  peers                  P2Pool peers: address, direction, version, ping, uptime, score
  bans                   active bans
  ban ADDR [SECONDS]     ban a host (default %d s) and drop its connections
  unban ADDR             lift a host's ban
  loglevel LEVEL         %s
  blocks                 blocks of the pool in the current sharechain, with their state at bitcoind
  payouts                blocks paying this node's payees: amounts, confirmations, state
  help                   this text""" % (DEFAULT_BAN_SECONDS, ' | '.join(LOG_LEVELS))


def unknown_command(name: str) -> str:
    return 'unknown command %r; "help" lists the commands' % name[:40]


class CommandError(Exception):
    """Bad usage: exit status 2 with this one-line message."""


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = ['  '.join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in [header] + rows]
    return '\n'.join(lines)


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return '?'
    return time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(timestamp))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return '?'
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return '%dh%02dm%02ds' % (hours, rest // 60, rest % 60) if hours else '%dm%02ds' % (rest // 60, rest % 60)


def _host(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise CommandError('not an IP address: %r' % text[:80]) from None


class ControlCommands:
    """See the module docstring."""

    def __init__(self, runner: Any, clock: Callable[[], float] = time.time) -> None:
        self.runner = runner
        self.clock = clock
        self.commands: dict[str, Callable[..., str]] = {
            'status': self.status, 'workers': self.workers, 'peers': self.peers, 'bans': self.bans,
            'ban': self.ban, 'unban': self.unban, 'loglevel': self.loglevel, 'blocks': self.blocks,
            'payouts': self.payouts, 'help': self.help}
        assert tuple(self.commands) == COMMAND_NAMES

    def run(self, line: str) -> tuple[int, str]:
        words = line.split()
        if not words:
            return 2, 'no command given; "help" lists them'
        name, args = words[0].lower(), words[1:]
        command = self.commands.get(name)
        if command is None:
            return 2, unknown_command(name)
        if name != 'help' and getattr(self.runner, 'web_view', None) is None:
            return 1, 'the node is still starting; try again in a moment'
        try:
            return 0, command(*args)
        except CommandError as e:
            return 2, str(e)
        except TypeError:
            return 2, 'wrong arguments for %s; "help" shows its usage' % name

    # --- commands -----------------------------------------------------------------------

    def help(self) -> str:
        return HELP

    def status(self) -> str:
        text, warnings = status_text(self.runner.web_view, self.clock())
        return '\n'.join([text] + ['Warning: ' + warning for warning in warnings])

    def workers(self) -> str:
        bridge = self.runner.work_bridge
        rates, dead_rates = bridge.local_rates()
        difficulties = bridge.last_share_difficulties
        rows, listed = [], set()
        stratum = getattr(self.runner, 'stratum', None)
        connections = sorted(getattr(stratum, 'connections', ()), key=lambda c: c.connected_at or 0)
        for connection in connections:
            username = connection.username
            if username is None:
                continue
            user = username.user
            listed.add(user)
            target = connection.vardiff.target
            rate = rates.get(user, 0.0)
            rows.append([user, username.address, format_hash_rate(rate) + 'H/s',
                         '%.1f%%' % (100 * dead_rates.get(user, 0.0) / rate) if rate else '-',
                         '%.6g' % target_to_difficulty(target) if target else '-',
                         '%s:%s' % (connection.addr.host, connection.addr.port), _when(connection.connected_at)])
        for user in sorted(set(rates) - listed):       # getwork miners: no connection of their own
            rate = rates[user]
            difficulty = difficulties.get(user)
            rows.append([user, user.split('.', 1)[0], format_hash_rate(rate) + 'H/s',
                         '%.1f%%' % (100 * dead_rates.get(user, 0.0) / rate) if rate else '-',
                         '%.6g' % difficulty if difficulty else '-', 'getwork', '-'])
        if not rows:
            return 'no workers connected'
        return _table(['worker', 'payout address', 'hash rate', 'dead', 'difficulty', 'remote', 'connected since'],
                      rows)

    def peers(self) -> str:
        p2p = self.runner.p2p_node
        now = self.clock()
        rows = []
        for peer in sorted(p2p.peers.values(), key=lambda peer: (peer.host or '', peer.port or 0)):
            ping = getattr(peer, 'ping_ms', None)
            connected_at = getattr(peer, 'connected_at', None)
            rows.append(['%s:%s' % (peer.host, peer.port), 'in' if peer.incoming else 'out',
                         '%s %s' % (peer.version, peer.sub_version or ''),
                         '%.1f ms' % ping if ping is not None else '?',
                         _duration(now - connected_at if connected_at is not None else None),
                         str(p2p.bans.score_of(peer.host))])
        if not rows:
            return 'no peers connected'
        return _table(['address', 'direction', 'version', 'ping', 'uptime', 'score'], rows)

    def bans(self) -> str:
        now = self.clock()
        active = self.runner.p2p_node.bans.active(now)
        if not active:
            return 'no active bans'
        return _table(['host', 'until', 'left', 'score', 'reason'],
                      [[ban.host, _when(ban.until), _duration(ban.until - now), str(ban.score), ban.reason]
                       for ban in active])

    def ban(self, address: str, seconds: str | None = None) -> str:
        host = _host(address)
        try:
            duration = DEFAULT_BAN_SECONDS if seconds is None else float(seconds)
        except ValueError:
            raise CommandError('SECONDS must be a number, got %r' % str(seconds)[:40]) from None
        if not 0 < duration <= 10 * 365 * 86400:
            raise CommandError('SECONDS must be above 0 and at most ten years')
        p2p = self.runner.p2p_node
        ban = p2p.bans.ban_for(host, duration, 'banned by the operator', self.clock())
        dropped = 0
        for peer in [peer for peer in p2p.connections if peer.addr and peer.addr[0] == ban.host]:
            peer.disconnect('banned by the operator')
            dropped += 1
        return 'banned %s until %s (%d connection%s dropped)' % (ban.host, _when(ban.until), dropped,
                                                                 '' if dropped == 1 else 's')

    def unban(self, address: str) -> str:
        host = _host(address)
        bans = self.runner.p2p_node.bans
        if bans.is_banned(host, self.clock()) is None:
            raise CommandError('%s is not banned' % host)
        bans.unban(host)
        return 'unbanned %s' % host

    def loglevel(self, level: str) -> str:
        if level.lower() not in LOG_LEVELS:
            raise CommandError('LEVEL must be one of %s' % ', '.join(LOG_LEVELS))
        logging.getLogger().setLevel(getattr(logging, level.upper()))
        return 'log level is now %s' % level.lower()

    def blocks(self) -> str:
        rows = [[_when(block['ts']), '?' if block['number'] is None else str(block['number']), block['hash'],
                 block.get('state') or '?'] for block in recent_blocks(WebContext(self.runner.web_view))]
        if not rows:
            return 'no blocks in the current sharechain'
        return _table(['time', 'height', 'block', 'state'], rows)

    def payouts(self) -> str:
        history = getattr(self.runner, 'payout_history', None)
        rows = history.rows() if history is not None else []
        if history is None or not rows:
            return 'no blocks paying this node\'s payees yet'
        symbol = self.runner.net.PARENT.SYMBOL
        lines = [[str(row['height']), row['hash'], _when(row['time']), address, '%.8f %s' % (amount, symbol),
                  str(row['confirmations']), row['state']]
                 for row in rows for address, amount in row['payouts'].items()]
        totals = history.totals()
        return (_table(['height', 'block', 'time', 'payee', 'amount', 'confirmations', 'state'], lines)
                + '\ntotal: ' + ', '.join('%s %.8f %s' % (state, coins, symbol) for state, coins in totals.items()))
