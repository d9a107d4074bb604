"""bench/run.py's own options: --help, --list, and a refused unknown name (the figures themselves are not tests)."""
import os
import subprocess
import sys

RUNNER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'bench', 'run.py')


def run(*args):
    return subprocess.run([sys.executable, RUNNER, *args], capture_output=True, text=True, timeout=60)


def test_help_list_and_unknown_names():
    shown = run('--help')
    assert shown.returncode == 0 and 'python bench/run.py --list' in shown.stdout
    listed = run('--list')
    assert listed.returncode == 0 and 'sim_100x24h_wall_s' in listed.stdout.split()
    refused = run('no_such_figure')
    assert refused.returncode == 2 and refused.stderr.startswith('unknown benchmark(s): no_such_figure')
