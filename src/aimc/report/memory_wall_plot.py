"""The memory-wall figure: energy by cause and weight-movement share vs batch size."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["plot_memory_wall"]


def plot_memory_wall(result: dict[str, Any], title: str | None = None):
    """Two panels: energy per inference by cause vs batch (log-log), and the weight share
    of energy and time vs batch. The analog chip, if present, is a horizontal line.

    Returns:
        a matplotlib ``Figure`` (Agg backend; save it with ``fig.savefig``).

    Example:
        >>> from aimc.graph.builders import mlp_workload
        >>> from aimc.experiments.memory_wall import memory_wall
        >>> fig = plot_memory_wall(memory_wall(mlp_workload([512, 512]), batches=(1, 64)))
        >>> len(fig.axes)
        2
    """
    import matplotlib
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    b = np.asarray(result["batch"], dtype=float)
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    parts = [("weights_pJ", "weight movement (DRAM+SRAM)"), ("activations_pJ", "activation movement"),
             ("mac_pJ", "MACs"), ("static_pJ", "static (idle power x time)")]
    ys = np.array([result[k] for k, _ in parts]) * 1e-6  # pJ -> uJ
    ax1.stackplot(b, ys, labels=[lab for _, lab in parts], alpha=0.85)
    a = result.get("analog")
    if a is not None:
        ax1.axhline(a["energy_pJ"] * 1e-6, color="k", ls="--", label="analog chip (weights stationary)")
    ax1.set(xscale="log", yscale="log", xlabel="batch size", ylabel="energy per inference (uJ)",
            title=f"{result['baseline']} ({result['precision']})")
    ax1.legend(fontsize=7, loc="upper right")
    ax2.plot(b, result["weight_energy_share"], "o-", label="weight movement / energy")
    ax2.plot(b, result["weight_energy_share_incl_static"], "s-", label="... incl. idle power while streaming")
    ax2.plot(b, result["weight_time_share"], "^-", label="weight transfer time / run time")
    ax2.axvline(result["ridge_ops_per_byte"] / 2, color="grey", ls=":", label="ridge point (MVM)")
    ax2.set(xscale="log", ylim=(0, 1.02), xlabel="batch size", ylabel="share")
    ax2.legend(fontsize=7, loc="lower left")
    if title:
        fig.suptitle(title)
    return fig
