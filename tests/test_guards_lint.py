"""ruff and mypy, with the settings in the repository (ruff.toml, setup.cfg [mypy]), over the whole tree.

Both are installed by the `test` extra. A failure here lists what the tool found, file and line.
"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
    result = subprocess.run([sys.executable, '-m', *args], cwd=ROOT, capture_output=True, text=True)
    return result.returncode, (result.stdout + result.stderr).strip()


def test_ruff_finds_nothing():
    code, output = _run('ruff', 'check', '--no-cache', '.')
    assert code == 0, output


@pytest.mark.slow
def test_mypy_finds_nothing():
    # the cache lives outside the tree so that a clean clone's run is the same as any other
    code, output = _run('mypy', '--cache-dir', os.path.join(ROOT, '.venv', 'mypy-cache'))
    assert code == 0, output
