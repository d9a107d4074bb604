"""Log injection (issue 16 finding 4): what a peer or miner sends is escaped and capped wherever
it is shown -- log lines, the console, web pages -- so that it cannot forge a line."""
import io
import logging
import time

from p2pool.app.logsetup import OneLineFormatter, setup_logging
from p2pool.app.views import WebNodeView
from p2pool.util.untrusted import shown
from p2pool.web.api import WebContext, peer_versions
from p2pool.testing.testchain import make_addresses
from p2p_helpers import RawClient, frame, start_node, stop_node
from twisted_helpers import reactor, run_in_reactor  # noqa: F401 (fixture)
from worker_helpers import header_for, make_bridge, solve

FORGED = ')\n2026-12-06 19:00:00 GOT BLOCK FROM PEER! Passing to bitcoind!\r\x1b[2K\x1b[31m\u202eevil'


def lines_of(caplog):
    return [record.getMessage() for record in caplog.records]


def assert_one_line_each(messages):
    for message in messages:
        assert '\n' not in message and '\r' not in message and '\x1b' not in message and '\u202e' not in message, \
            message


def test_shown_escapes_and_caps():
    assert shown('a\nb\x1b[31m\u202e\\n') == 'a\\nb\\x1b[31m\\u202e\\\\n'
    assert shown(b'\xff\x00ok') == '\ufffd\\x00ok'
    assert shown('x' * 10**6, 50) == 'x' * 50 + '...'
    assert len(shown('\n' * 1000, 50)) <= 53
    assert shown('plain worker.rig_1 /P2Pool:17.0/') == 'plain worker.rig_1 /P2Pool:17.0/'


def test_a_peers_sub_version_is_one_safe_line_in_the_log_and_the_web(reactor, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    node = start_node()
    try:
        client = RawClient(node.listening_port)
        client.send(frame('version', version=3501, services=0, nonce=12345,
                          addr_to={'services': 0, 'address': '127.0.0.1', 'port': 1},
                          addr_from={'services': 0, 'address': '127.0.0.1', 'port': 1},
                          sub_version=FORGED.encode() + b'x' * 5000, mode=1, best_share_hash=None))
        client.read_until('version')
        deadline = time.monotonic() + 5
        while not node.peers and time.monotonic() < deadline:
            time.sleep(0.02)
        (peer,) = node.peers.values()
        assert peer.sub_version.startswith(')\\n2026-12-06 19:00:00 GOT BLOCK') and len(peer.sub_version) <= 203
        messages = lines_of(caplog)
        assert any('connected' in message and 'GOT BLOCK' in message for message in messages)
        assert_one_line_each(messages)
        view = WebNodeView.__new__(WebNodeView)
        view.p2p_node = node
        versions = peer_versions(WebContext(view, None, time.time))
        assert_one_line_each(versions.values())
        client.sock.close()
    finally:
        stop_node(node)


def test_a_miners_worker_name_is_one_safe_line_in_the_log(caplog):
    caplog.set_level(logging.DEBUG)
    env = make_bridge()
    address = make_addresses(env.net, 1, seed=b'miner')[0]
    record, handler = env.bridge.get_work(address + '.rig' + FORGED + 'y' * 600)
    header = solve(header_for(record, b'\x00' * 4), env.net.PARENT.pow_hash, target=record.min_share_target)
    users = []
    env.bridge.pseudoshare_received.watch(lambda work, dead, user: users.append(user))
    handler(header)                                  # a block and a share on bsv_regtest
    handler(header)                                  # and once more: "more than once!"
    messages = lines_of(caplog)
    assert any('GOT BLOCK FROM MINER' in message for message in messages)
    assert any('GOT SHARE' in message for message in messages)
    assert_one_line_each(messages)
    (user,) = users                                  # the key of the statistics and web pages
    assert user.startswith(address + '.rig)\\n2026') and len(user) <= 163
    unpayable = env.bridge.get_work('not-an-address' + FORGED)
    assert unpayable is not None
    assert_one_line_each(lines_of(caplog))


def test_the_log_formatter_keeps_every_message_on_one_line():
    console = io.StringIO()
    setup_logging(None, console=console)
    try:
        logging.getLogger('p2pool.test').warning('peer says %s', 'hi\nFORGED LINE\x1b[2J')
        try:
            raise ValueError('boom')
        except ValueError:
            logging.getLogger('p2pool.test').exception('failed for %s', 'x\ny')
    finally:
        for handler in list(logging.getLogger().handlers):
            if isinstance(handler.formatter, OneLineFormatter):
                logging.getLogger().removeHandler(handler)
    text = console.getvalue()
    assert 'hi\\nFORGED LINE\\x1b[2J' in text and '\x1b' not in text
    assert 'failed for x\\ny\nTraceback (most recent call last):' in text     # tracebacks keep their lines
