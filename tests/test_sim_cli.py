"""`p2pool simulate` as a user meets it: bad options end at once with one line and status 2, a chart
that cannot be made never costs the figures of a long run, Ctrl-C ends a run without a traceback."""
import gc
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from p2pool.sim import cli, plot
from p2pool.sim.world import Simulation


@pytest.fixture
def no_run(monkeypatch):
    """Simulation.run fails the test: a refused option must be refused before anything is simulated."""
    def run(self):
        raise AssertionError('a run started despite a bad option')
    monkeypatch.setattr(Simulation, 'run', run)


@pytest.mark.parametrize('bad', [
    ['--hours', 'nan'], ['--hours', 'inf'], ['--hours', '0'], ['--latency-ms', 'nan'], ['--latency-ms', 'inf'],
    ['--latency-ms', '-5'], ['--latency-spread', '-1'], ['--loss', '1'], ['--bandwidth-mbit', '0'],
    ['--churn', '-1'], ['--work-delay-ms', '-1'], ['--block-propagation-ms', 'nan'], ['--pool-fraction', '0'],
    ['--share-period', '0'], ['--share-period', '2.5'], ['--outgoing-conns', '0'], ['--max-conns', '0'],
    ['--hashrate', 'pareto:0'], ['--hashrate', 'pareto:x'], ['--hashrate', 'list:1,x,2'],
    ['--adversary', 'withhold:nan'],
    ['--sweep', 'nodes=5,1'], ['--sweep', 'nodes=2.5'], ['--sweep', 'loss=0.1,1.5'], ['--sweep', 'share-period=0'],
    ['--sweep', 'latency-ms=-5'], ['--sweep', 'outgoing-conns=-2'], ['--sweep', 'latency-ms=50,x'],
])
def test_a_bad_option_is_refused_with_one_line_before_any_run(bad, no_run, capsys):
    assert cli.main(['--nodes', '5', '--hours', '0.01'] + bad) == 2
    captured = capsys.readouterr()
    assert captured.out == ''
    assert captured.err.startswith('p2pool simulate: ') and captured.err.count('\n') == 1, captured.err
    assert 'Traceback' not in captured.err


def test_missing_matplotlib_is_reported_before_the_run(monkeypatch, no_run, capsys, tmp_path):
    def missing():
        raise ImportError("--plot needs matplotlib: pip install 'p2pool[plot]'")
    monkeypatch.setattr(plot, 'load_pyplot', missing)
    assert cli.main(['--nodes', '3', '--hours', '0.01', '--plot', str(tmp_path / 'charts')]) == 2
    assert 'needs matplotlib' in capsys.readouterr().err


def test_a_chart_that_cannot_be_written_leaves_the_figures_printed(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(plot, 'load_pyplot', lambda: None)

    def disk_full(*args):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(plot, 'write_charts', disk_full)
    assert cli.main(['--nodes', '3', '--hours', '0.02', '--share-period', '10', '--outgoing-conns', '1',
                     '--json', '--plot', str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)['nodes'] == 3
    assert captured.err.startswith('p2pool simulate: cannot write the charts: ')


def test_swept_whole_numbers_are_reported_as_such(capsys):
    assert cli.main(['--nodes', '3', '--hours', '0.01', '--share-period', '10', '--outgoing-conns', '1',
                     '--sweep', 'nodes=3,4', '--json']) == 0
    runs = json.loads(capsys.readouterr().out)['runs']
    assert [run['sweep_value'] for run in runs] == [3, 4] and [run['nodes'] for run in runs] == [3, 4]


def test_only_the_exiting_command_freezes_the_finished_network():
    """The console command freezes what its last run leaves (no ~3 s collection of 0.9 GB before exit);
    a caller that goes on (these tests) keeps a collector that can free it."""
    frozen = gc.get_freeze_count()
    assert cli.main(['--nodes', '3', '--hours', '0.01', '--share-period', '10', '--outgoing-conns', '1',
                     '--json']) == 0
    assert gc.get_freeze_count() == frozen
    try:
        assert cli.main(['--nodes', '3', '--hours', '0.01', '--share-period', '10', '--outgoing-conns', '1',
                         '--json'], exiting=True) == 0
        assert gc.get_freeze_count() > frozen
    finally:
        gc.unfreeze()


def test_ctrl_c_ends_a_long_run_with_one_line():
    # the default SIGINT: a test started from a background job inherits it ignored
    process = subprocess.Popen(
        [sys.executable, '-m', 'p2pool', 'simulate', '--nodes', '40', '--hours', '24'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=os.path.dirname(os.path.dirname(__file__)),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(3)     # into the run (start-up takes about a second)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err.decode() == 'p2pool simulate: interrupted\n' and out == b''
