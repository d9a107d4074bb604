"""PNG charts of simulation runs (matplotlib, installed with the `[plot]` extra)."""
from __future__ import annotations

import os
from typing import Any

from p2pool.sim.world import Scenario


def load_pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ImportError("--plot needs matplotlib: pip install 'p2pool[plot]'") from None
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def write_charts(directory: str, runs: list[dict[str, Any]], sweep: str | None, scenario: Scenario) -> list[str]:
    """Charts for a sweep (stale rates against the swept option) or for one run (adversaries)."""
    plt = load_pyplot()
    os.makedirs(directory, exist_ok=True)
    written = []
    if sweep is not None:
        xs = [run['sweep_value'] for run in runs]
        fig, ax = plt.subplots(figsize=(6, 4))
        for key, label in (('stale_rate', 'stale (orphan + DOA)'), ('orphan_rate', 'orphan'), ('doa_rate', 'DOA')):
            ax.plot(xs, [100 * (run[key] or 0) for run in runs], marker='o', label=label)
        ax.set_xlabel(sweep)
        ax.set_ylabel('% of shares')
        ax.set_title('%s, %d nodes, %g h: stale shares against %s' % (
            scenario.net, scenario.nodes, scenario.hours, sweep))
        ax.grid(True, alpha=0.3)
        ax.legend()
        path = os.path.join(directory, 'stale_vs_%s_%s.png' % (sweep.replace('-', '_'), scenario.net))
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    adversaries = [(run, adversary) for run in runs for adversary in run.get('adversaries', ())]
    if adversaries:
        fig, ax = plt.subplots(figsize=(6, 4))
        labels = ['%s %.0f%%' % (a['kind'], 100 * a['hash_share']) for _, a in adversaries]
        positions = list(range(len(adversaries)))
        ax.bar([p - 0.2 for p in positions], [100 * a['hash_share'] for _, a in adversaries], 0.4,
               label='hash-rate share')
        ax.bar([p + 0.2 for p in positions], [100 * a['payout_share'] for _, a in adversaries], 0.4,
               label='payout share')
        ax.set_xticks(positions)
        ax.set_xticklabels(labels)
        ax.set_ylabel('%')
        ax.set_title('%s, %d nodes: what an adversary earns' % (scenario.net, scenario.nodes))
        ax.legend()
        path = os.path.join(directory, 'adversaries_%s.png' % scenario.net)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written
