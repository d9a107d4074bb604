"""Pieces of `p2pool demo` (p2pool/commands/demo.py): its child processes and its view of bitcoind's chain.

Child starts a process in its own session (so a Ctrl-C in the terminal reaches only
the demo) that the kernel stops if the demo dies; BlockScanner follows bitcoind's
main chain for blocks paying every miner; fetch_json reads a node's web API.
"""
import ctypes
import http.client
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections import deque
from pathlib import Path
from typing import Any

import p2pool
from p2pool.bitcoin import data as bitcoin_data

def _child_setup(niceness=0):
    """preexec hook: lower the child's priority and have Linux SIGTERM it if the demo dies."""
    parent = os.getpid()
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == 'linux' else None
    except (OSError, AttributeError):
        prctl = None

    def setup():
        if niceness:
            os.nice(niceness)
        if prctl is not None:
            prctl(1, int(signal.SIGTERM), 0, 0, 0)     # PR_SET_PDEATHSIG
            if os.getppid() != parent:                 # the demo died before prctl took effect
                os.kill(os.getpid(), signal.SIGTERM)
    return setup


class Child:
    """A process the demo started, with its output in a log file; stopped by its PID."""

    def __init__(self, name, args, log_path, niceness=0):
        self.name, self.args, self.log_path, self.niceness = name, args, Path(log_path), niceness
        self.process = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> 'Child':
        env = dict(os.environ, PYTHONUNBUFFERED='1')
        # The children import this very package, also when it runs from a checkout.
        package_root = str(Path(p2pool.__file__).resolve().parent.parent)
        env['PYTHONPATH'] = os.pathsep.join(filter(None, [package_root, env.get('PYTHONPATH')]))
        with open(self.log_path, 'ab') as log:
            self.process = subprocess.Popen(
                self.args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True, preexec_fn=_child_setup(self.niceness))
        self.starts += 1
        return self

    def stop(self, grace) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; safe by PID because we have not reaped it yet."""
        if self.process is None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
            if self.process.poll() is not None:
                break
            os.kill(self.process.pid, sig)
            try:
                self.process.wait(wait)
            except subprocess.TimeoutExpired:
                pass

    def last_words(self, lines=15) -> str:
        try:
            tail = self.log_path.read_text(errors='replace').splitlines()[-lines:]
        except OSError:
            tail = []
        return '%s exited with code %s; the end of %s:\n%s' % (
            self.name, self.process.returncode, self.log_path, '\n'.join(tail) or '(nothing)')


_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # never via $http_proxy


def fetch_json(port, path, timeout=2.0) -> Any:
    """GET http://127.0.0.1:PORT/PATH as JSON; None when the node cannot answer (yet)."""
    try:
        with _LOOPBACK.open('http://127.0.0.1:%d/%s' % (port, path), timeout=timeout) as reply:
            return json.load(reply)
    except (OSError, ValueError, http.client.HTTPException):
        return None


class BlockScanner:
    """Follows bitcoind's main chain and collects the blocks whose coinbase pays every miner."""

    def __init__(self, bitcoind, first_height, miner_scripts):
        self.bitcoind, self.first_height, self.miner_scripts = bitcoind, first_height, miner_scripts
        self.tip = first_height - 1
        self.recent = deque(maxlen=200)    # (height, hash) scanned, to notice a reorganisation
        self.paying_all = []               # oldest first

    @property
    def blocks(self) -> int:
        """Blocks the pool added to the chain (those above the pre-mined ones)."""
        return max(0, self.tip - self.first_height + 1)

    def poll(self, max_blocks=100) -> None:
        rpc = self.bitcoind.rpc
        self.tip = rpc('getblockcount')
        while self.recent and (self.recent[-1][0] > self.tip
                               or rpc('getblockhash', self.recent[-1][0]) != self.recent[-1][1]):
            height, _ = self.recent.pop()
            self.paying_all = [block for block in self.paying_all if block['height'] < height]
        start = self.recent[-1][0] + 1 if self.recent else self.first_height
        for height in range(start, min(self.tip, start + max_blocks - 1) + 1):
            block_hash = rpc('getblockhash', height)
            block = bitcoin_data.block_type.unpack(bytes.fromhex(rpc('getblock', block_hash, 0)))
            outputs = block['txs'][0]['tx_outs']
            paid = {address: sum(out['value'] for out in outputs if out['script'] == script)
                    for address, script in self.miner_scripts.items()}
            if all(paid.values()):
                self.paying_all.append({'height': height, 'hash': block_hash, 'paid': paid,
                                        'other_outputs': sum(out['value'] for out in outputs) - sum(paid.values())})
            self.recent.append((height, block_hash))
