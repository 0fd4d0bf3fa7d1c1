"""Stacked-bar plot of a :class:`~aimc.cost.estimator.CostReport`'s energy breakdown.

Example:
    >>> import tempfile, pathlib, aimc
    >>> r = aimc.cost.estimate(aimc.cost.mvm_workload(256, 256, 4), "pcm-hermes")
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "cost.png"
    >>> plot_breakdown(r, p).exists()
    True
"""
from __future__ import annotations

from pathlib import Path

from aimc.cost.layer_cost import BREAKDOWN
__all__ = ["plot_breakdown"]

_COLOURS = {"array": "#4c72b0", "dac": "#55a868", "adc": "#c44e52", "digital": "#8172b2",
            "data_movement": "#ccb974", "host": "#8c8c8c", "host_memory": "#937860",
            "inter_core": "#da8bc3", "static": "#64b5cd"}


def plot_breakdown(report, path: str | Path) -> Path:
    """Energy per layer (pJ, stacked by category) and, with a baseline, the totals side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    panels = 2 if report.baseline else 1
    fig, axes = plt.subplots(1, panels, figsize=(4 + 1.2 * len(report.layers) + 3 * (panels - 1), 4), squeeze=False)
    ax = axes[0][0]
    names = [lc.title for lc in report.layers]  # "0: conv 9x16", not "0"
    bottom = [0.0] * len(names)
    for k in BREAKDOWN:
        vals = [lc.energy_pJ.get(k, 0.0) for lc in report.layers]
        ax.bar(names, vals, bottom=bottom, label=k, color=_COLOURS[k])
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_ylabel("energy per inference (pJ)")
    ax.set_title(f"{report.chip}: {report.energy_pJ / 1e3:.3g} nJ, {report.tops_per_w:.3g} TOPS/W")
    ax.tick_params(axis="x", rotation=45)
    ax.legend(fontsize=8)
    if report.baseline:
        ax2 = axes[0][1]
        labels = [report.chip, str(report.baseline.get("name", "baseline"))]
        bottom = [0.0, 0.0]
        for k in BREAKDOWN:
            vals = [report.breakdown.get(k, 0.0), report.baseline["breakdown"].get(k, 0.0)]
            ax2.bar(labels, vals, bottom=bottom, color=_COLOURS[k])
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax2.set_title("total energy per inference (pJ)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
