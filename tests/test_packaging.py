"""`pip install .` gives a working `p2pool` command that finds networks/ and web-static/ outside a checkout."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_installed_package_finds_its_data_files(tmp_path):
    venv = tmp_path / 'venv'
    # The test's own environment already has the dependencies. A --system-site-packages venv would see the base
    # interpreter's packages, not this venv's (a clean machine has none there), so the new venv is plain and a .pth
    # file appends this environment's site-packages after its own: the installed p2pool is found first.
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
    python = venv / 'bin' / 'python'
    own_site = subprocess.run([str(python), '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'],
                              capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(own_site, 'test_dependencies.pth'), 'w') as pth:
        pth.write('\n'.join(path for path in sys.path if path.endswith('site-packages')) + '\n')
    # from a clean copy: a stale build/ folder of the checkout would leak old files into the wheel
    source = tmp_path / 'source'
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        '.git', '.venv', 'build', 'dist', '*.egg-info', '__pycache__', '.pytest_cache', '.hypothesis', 'data',
        'test-artifacts'))
    subprocess.run([str(python), '-m', 'pip', 'install', '-q', '--no-deps', str(source)],
                   check=True, cwd=tmp_path)
    outside = tmp_path / 'elsewhere'
    outside.mkdir()
    where = subprocess.run(
        [str(python), '-c', 'import p2pool, p2pool.app.resources as r, p2pool.app.cli as c; print(p2pool.__file__); '
                            'print(r.networks_dir()); print(r.web_static_dir()); print(c.DEFAULT_DATADIR)'],
        cwd=outside, capture_output=True, text=True, check=True, env=_home(tmp_path)).stdout.split()
    package, networks, web_static, datadir = where
    assert datadir == str(tmp_path / '.local' / 'share' / 'p2pool'), 'data must not go into site-packages'
    assert 'site-packages' in package, 'the installed copy must be used, not the checkout'
    assert not networks.startswith(ROOT) and os.path.isfile(os.path.join(networks, 'bitcoin.toml'))
    assert not web_static.startswith(ROOT) and os.path.isfile(os.path.join(web_static, 'index.html'))
    command = venv / 'bin' / 'p2pool'
    result = subprocess.run([str(command), 'inspect', '--net', 'litecoin', 'address',
                             'LZ4wW2nNx7pX1NmMsBuYx2zZS1wPQeMcv6'], cwd=outside, capture_output=True, text=True)
    assert result.returncode in (0, 2) and 'Traceback' not in result.stderr
    help_text = subprocess.run([str(command), '--help'], cwd=outside, capture_output=True, text=True, check=True)
    assert '--net' in help_text.stdout and '--p2pool-port' in help_text.stdout


def _home(path):
    """The environment with HOME at `path` and no XDG_DATA_HOME: where an installed node keeps its data."""
    env = {key: value for key, value in os.environ.items() if key != 'XDG_DATA_HOME'}
    env['HOME'] = str(path)
    return env
