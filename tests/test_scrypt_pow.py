"""The scrypt proof of work: the C accelerator (p2pool/bitcoin/_scrypt.c) against known answers and OpenSSL,
its use when the install built it, the hashlib fallback without it, and batches hashed on threads."""
import json
import os
import random
import shutil
import subprocess
import sys
import sysconfig
import threading

import pytest

from p2pool.bitcoin import hashes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VECTORS = json.load(open(os.path.join(ROOT, 'tests', 'vectors', 'scrypt_pow.json'), encoding='utf-8'))['vectors']

try:
    from p2pool.bitcoin import _scrypt
except ImportError:
    _scrypt = None

needs_accelerator = pytest.mark.skipif(_scrypt is None, reason='the C accelerator p2pool/bitcoin/_scrypt.c is not '
                                                               'built (no C compiler or Python headers at install)')


def openssl_scrypt(data):
    import hashlib
    return hashlib.scrypt(data, salt=data, n=1024, r=1, p=1, dklen=32)


def random_headers(count, seed=1024):
    rng = random.Random(seed)
    return [rng.randbytes(80) for _ in range(count)]


@pytest.mark.parametrize('vector', VECTORS, ids=[v['name'] for v in VECTORS])
def test_known_answers(vector):
    header, expected = bytes.fromhex(vector['header']), int(vector['pow_hash'], 16)
    assert hashes.scrypt_pow(header) == expected
    assert hashes.scrypt_pow_hashlib(header) == expected
    assert hashes.pow_hashes('scrypt', [header] * 3) == [expected] * 3
    if _scrypt is not None:
        assert int.from_bytes(_scrypt.scrypt_portable(header), 'little') == expected


@needs_accelerator
def test_both_cores_agree_with_openssl_on_random_input():
    for header in random_headers(100):
        assert _scrypt.scrypt(header) == openssl_scrypt(header)
    rng = random.Random(7)
    # other lengths: keys shorter and longer than the 64-byte HMAC block, several SHA-256 blocks of salt
    for size in (0, 1, 55, 56, 63, 64, 65, 79, 81, 119, 120, 200):
        data = rng.randbytes(size)
        assert _scrypt.scrypt(data) == _scrypt.scrypt_portable(data) == openssl_scrypt(data), size


@needs_accelerator
def test_scrypt_many_hashes_each_record_in_order():
    headers = random_headers(9, seed=3)    # odd: four pairs and one alone
    digests = _scrypt.scrypt_many(b''.join(headers), 80)
    assert [digests[i:i + 32] for i in range(0, len(digests), 32)] == [openssl_scrypt(h) for h in headers]
    assert _scrypt.scrypt_many(b'', 80) == b''
    assert _scrypt.scrypt_many(bytearray(b'ab' * 5), 2) == b''.join(openssl_scrypt(b'ab') for _ in range(5))
    for records, size in ((bytes(81), 80), (bytes(80), 0), (bytes(80), -80)):
        with pytest.raises(ValueError):
            _scrypt.scrypt_many(records, size)
    with pytest.raises(TypeError):
        _scrypt.scrypt('not bytes')


def _compiler_and_headers():
    compiler = (sysconfig.get_config_var('CC') or 'cc').split()[0]
    headers = os.path.join(sysconfig.get_paths()['include'], 'Python.h')
    return shutil.which(compiler) is not None and os.path.exists(headers)


@pytest.mark.skipif(not _compiler_and_headers(), reason='no C compiler or no Python.h on this machine: the install '
                                                        'cannot build the accelerator')
def test_the_install_built_the_accelerator_and_the_pow_uses_it(monkeypatch):
    assert _scrypt is not None, 'pip install -e . should have built p2pool/bitcoin/_scrypt.c'
    assert hashes.SCRYPT_IMPLEMENTATION == 'c-' + _scrypt.SALSA_CORE
    if sysconfig.get_platform().endswith(('x86_64', 'amd64')):
        assert _scrypt.SALSA_CORE == 'sse2'
    calls, real_scrypt = [], _scrypt.scrypt
    monkeypatch.setattr(hashes._accelerator, 'scrypt', lambda data: calls.append(data) or real_scrypt(data))
    header = random_headers(1)[0]
    assert hashes.POW_FUNCTIONS['scrypt'](header) == int.from_bytes(openssl_scrypt(header), 'little')
    assert calls == [header]


def test_without_the_accelerator_hashlib_does_the_work():
    """What a machine without a compiler gets: the import fails, hashes falls back, everything still works."""
    header = random_headers(1)[0].hex()
    script = (
        "import sys; sys.modules['p2pool.bitcoin._scrypt'] = None\n"   # makes the import raise ImportError
        "from p2pool.bitcoin import hashes\n"
        "h = bytes.fromhex(%r)\n"
        "assert hashes.SCRYPT_IMPLEMENTATION == 'hashlib', hashes.SCRYPT_IMPLEMENTATION\n"
        "assert hashes.pow_hashes('scrypt', [h] * 20) == [hashes.scrypt_pow(h)] * 20\n"
        "print(hashes.scrypt_pow(h))\n" % header)
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == int.from_bytes(openssl_scrypt(bytes.fromhex(header)), 'little')


@needs_accelerator
def test_the_accelerator_releases_the_gil_while_it_hashes():
    """With forced thread switches off, the main thread can only run while the worker is inside the C call if
    that call let go of the GIL."""
    blob = b''.join(random_headers(8))
    inside, seen, stop = threading.Event(), threading.Event(), threading.Event()

    def worker():
        for _ in range(5000):   # until the main thread saw it (a few ms), or some seconds
            inside.set()
            _scrypt.scrypt_many(blob, 80)
            inside.clear()
            if stop.is_set():
                return

    interval = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    try:
        thread = threading.Thread(target=worker)
        thread.start()
        while thread.is_alive() and not seen.is_set():
            # blocking, so the GIL goes to the worker; True also for a set() long past, hence is_set()
            if inside.wait(0.001) and inside.is_set():
                seen.set()
        stop.set()
        thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert seen.is_set()


def test_pow_hashes_match_one_by_one_and_use_the_pool(monkeypatch):
    threads = []
    real_batch = hashes._scrypt_batch

    def recording_batch(headers):
        threads.append((threading.current_thread().name, len(headers)))
        return real_batch(headers)

    monkeypatch.setattr(hashes, '_scrypt_batch', recording_batch)
    monkeypatch.setattr(hashes, 'pow_threads', lambda: 3)
    headers = random_headers(40)
    assert hashes.pow_hashes('scrypt', headers) == [hashes.scrypt_pow_hashlib(h) for h in headers]
    assert sorted(size for _name, size in threads) == [12, 14, 14]
    assert (threading.current_thread().name, 14) in threads                 # the caller hashes the first slice
    assert sum(name.startswith('pow-hash') for name, _size in threads) == 2
    threads.clear()
    assert hashes.pow_hashes('scrypt', headers[:7]) == [hashes.scrypt_pow(h) for h in headers[:7]]
    assert threads == [(threading.current_thread().name, 7)]                 # a small batch stays on the caller
    assert hashes.pow_hashes('scrypt', []) == []
    assert hashes.pow_hashes('sha256d', headers) == [hashes.hash256(h) for h in headers]
    odd = [bytes(79), bytes(81)]   # not headers: one by one, still right
    assert hashes.pow_hashes('scrypt', odd) == [hashes.scrypt_pow_hashlib(h) for h in odd]
