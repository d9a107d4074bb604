"""Real regtest Litecoin Core nodes (Debian's `litecoind` 0.21.2.1) for tests and the demo.

The process handling (free ports, -connect peering, stop by PID, leftover cleanup, the
atexit hook) is the one of p2pool.testing.regtest; this module only knows what differs
for Litecoin Core: the binary comes from Debian (installed with apt-get when missing),
its command line, its wallet (0.21 creates none by default) and its MWEB soft fork.

Facts measured on litecoind 0.21.2.1 in regtest mode live here as constants.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from p2pool.testing.regtest import (
    COINBASE_MATURITY, RegtestBitcoind, RegtestError, RegtestNetwork, RegtestRpcError)

log = logging.getLogger(__name__)

LITECOIND_PACKAGE = 'litecoind'
INSTALL_HINT = 'install Litecoin Core with: sudo apt-get install litecoind'
MINIMUM_VERSION = 210201                 # 0.21.2.1: the first Debian release with MWEB

LTC_REGTEST_P2P_MAGIC = bytes.fromhex('fabfb5da')
LTC_REGTEST_GENESIS_HASH = '530827f38f93b43ed12af0b3ad25a288dc02ed74d6d7857862df51fc56c416f9'
LTC_REGTEST_HALVING_INTERVAL = 150
MWEB_ACTIVATION_HEIGHT = 432             # BIP9 bit 4, signalled by every generatetoaddress block
WALLET_NAME = 'p2pool'
RPC_WALLET_NOT_FOUND = -18

LITECOIND_ARGS = (
    '-regtest', '-server=1', '-listen=1', '-daemon=0', '-printtoconsole=0', '-txindex=1',
    '-bind=127.0.0.1', '-rpcbind=127.0.0.1', '-rpcallowip=127.0.0.1', '-whitelist=127.0.0.1',
    '-dnsseed=0', '-discover=0', '-upnp=0', '-listenonion=0',
    '-fallbackfee=0.0001', '-maxtipage=2000000000',
    # each p2pool node keeps one getblocktemplate long poll open in an RPC thread
    '-rpcthreads=32',
)


def litecoind_path(install: bool = True, lock_wait: float = 600.0) -> Path:
    """Path of `litecoind`; installs Debian's package first when it is missing and `install`.

    Another apt may hold the dpkg lock (CI installs Chromium too): apt waits for it
    (DPkg::Lock::Timeout) and the whole install is retried until `lock_wait` seconds
    have passed.
    """
    found = shutil.which('litecoind')
    if found:
        return Path(found)
    if not install:
        raise RegtestError(f'litecoind is not installed; {INSTALL_HINT}')
    apt = shutil.which('apt-get')
    if apt is None or os.geteuid() != 0:
        raise RegtestError(f'litecoind is not installed and cannot be installed here; {INSTALL_HINT}')
    deadline = time.monotonic() + lock_wait
    updated = False
    problem_text = 'apt-get failed'
    while time.monotonic() < deadline:
        command = [apt, '-o', 'DPkg::Lock::Timeout=120', 'install', '-y', '-q', LITECOIND_PACKAGE]
        run = subprocess.run(command, capture_output=True, text=True,
                             env={**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'})
        found = shutil.which('litecoind')
        if run.returncode == 0 and found:
            log.info('installed %s with apt-get', LITECOIND_PACKAGE)
            return Path(found)
        problem_text = ((run.stderr or run.stdout).strip().splitlines() or ['apt-get failed'])[-1]
        if 'Unable to locate package' in problem_text and not updated:
            subprocess.run([apt, '-o', 'DPkg::Lock::Timeout=120', 'update', '-q'], capture_output=True)
            updated = True
            continue
        if 'lock' not in problem_text.lower():
            break
        time.sleep(5)
    raise RegtestError(f'installing {LITECOIND_PACKAGE} failed: {problem_text}; {INSTALL_HINT}')


class RegtestLitecoind(RegtestBitcoind):
    """One regtest litecoind on loopback with a loaded wallet named `p2pool`."""

    DAEMON_NAME = 'litecoind'
    BASE_ARGS = LITECOIND_ARGS
    LOG_FILE = 'debug.log'

    @staticmethod
    def default_binary() -> Path:
        return litecoind_path()

    def _wait_ready(self) -> None:
        super()._wait_ready()
        self._load_wallet()

    def _load_wallet(self) -> None:
        if WALLET_NAME in self.rpc('listwallets'):
            return
        try:
            self.rpc('loadwallet', WALLET_NAME)
        except RegtestRpcError as error:
            if error.code != RPC_WALLET_NOT_FOUND:
                raise
            self.rpc('createwallet', WALLET_NAME)

    def write_bitcoin_conf(self, path: Any) -> Path:
        """Write a litecoin.conf with this node's credentials and ports in a [regtest] section."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            '# written by p2pool.testing.regtest_litecoin\nregtest=1\nserver=1\n\n'
            f'[regtest]\nrpcuser={self.user}\nrpcpassword={self.password}\n'
            f'rpcport={self.rpc_port}\nport={self.p2p_port}\n')
        return path

    def wallet_address(self) -> str:
        """A legacy (version 111) address of this node's wallet, the same one each time."""
        if self._mining_address is None:
            self._mining_address = self.rpc('getnewaddress', '', 'legacy')
        return self._mining_address

    def new_address(self, kind: str) -> str:
        """A fresh wallet address: 'legacy', 'p2sh-segwit', 'bech32' or 'mweb'."""
        return self.rpc('getnewaddress', '', kind)

    def mweb_active(self) -> bool:
        info = self.rpc('getblockchaininfo')
        return bool(info.get('softforks', {}).get('mweb', {}).get('active'))

    def activate_mweb(self) -> None:
        """Mine signalling blocks up to the activation height and put a peg-in in the mempool.

        The first MWEB block needs a peg-in (getblocktemplate fails with
        bad-txns-vin-empty without one).
        """
        missing = MWEB_ACTIVATION_HEIGHT - 1 - self.rpc('getblockcount')
        if missing > 0:
            self.mine(missing)
        self.peg_in()

    def peg_in(self, amount: float = 1.0) -> str:
        """Send `amount` LTC to an MWEB address of this wallet; returns the txid."""
        return self.rpc('sendtoaddress', self.new_address('mweb'), amount)

    def __repr__(self) -> str:
        return f'<RegtestLitecoind pid={self.pid} rpc={self.rpc_port} p2p={self.p2p_port}>'


class LitecoinRegtestNetwork(RegtestNetwork):
    """Two peered regtest litecoind nodes with a mature chain in `first`'s wallet."""

    NODE_CLASS = RegtestLitecoind

    def __init__(self, litecoind: Any = None, root_dir: Any = None,
                 mature_blocks: int = COINBASE_MATURITY + 1) -> None:
        super().__init__(litecoind, root_dir=root_dir, mature_blocks=mature_blocks)
