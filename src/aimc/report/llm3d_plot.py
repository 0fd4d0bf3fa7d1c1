"""Figures of the 3D-AIMC LLM study (``aimc llm3d``): throughput and energy per token vs
batch size, 3D chip against its GPU baseline, and the tier occupancy of a mapping.

Both take plain results (the dicts of :func:`aimc.workloads.llm3d.api.sweep_batch` and
:func:`~aimc.workloads.llm3d.api.tier_map`) and return a matplotlib ``Figure`` drawn on
the Agg canvas (no pyplot state); save it with :func:`save_figure`.

Example:
    >>> import numpy as np
    >>> r = {"batches": [1, 4], "chip": "3d-nvm", "mapping": "greedy_in_order", "baseline": None,
    ...      "models": {"m": {"tokens_per_s": [1e4, 3e4], "J_per_token": [2e-3, 1e-3]}}}
    >>> fig = plot_batch_sweep(r)
    >>> [line.get_ydata().tolist() for line in fig.axes[0].lines]
    [[10000.0, 30000.0]]
    >>> m = {"grid": np.array([[1, 2], [0, 2]], dtype=np.uint8), "roles": ["empty", "a", "b"],
    ...      "tiers_used": [1, 2], "occupancy": 0.75, "model": "m", "chip": "c", "mapping": "greedy_in_order"}
    >>> plot_tier_map(m).axes[0].images[0].get_array().tolist()
    [[1, 2], [0, 2]]
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_batch_sweep", "plot_tier_map", "save_figure", "ROLE_COLOURS"]

#: One colour per role code of the tier map (0, empty, is white).
ROLE_COLOURS = ("#ffffff", "#8c8c8c", "#4c72b0", "#55a868", "#2d6a3e", "#c44e52", "#ccb974", "#8172b2",
                "#da8bc3", "#64b5cd")


def plot_batch_sweep(result: dict[str, Any]):
    """Two log-log panels vs batch size: tokens/s and energy per token (mJ), one solid
    line per model on the 3D chip and, with a baseline, a dashed one on the GPU.

    Args:
        result: :func:`aimc.workloads.llm3d.api.sweep_batch`'s dict.

    Returns:
        a matplotlib ``Figure``; each line's y data are the result's numbers (J -> mJ).
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator as _NULL

    b = np.asarray(result["batches"], dtype=float)
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    gpu = result.get("baseline")
    for k, (name, row) in enumerate(result["models"].items()):
        style = {"color": f"C{k}", "marker": "o^Dvsp"[k % 6], "markersize": 5}
        ax1.plot(b, row["tokens_per_s"], "-", label=f"{name} on {result['chip']}", **style)
        ax2.plot(b, np.asarray(row["J_per_token"]) * 1e3, "-", label=f"{name} on {result['chip']}", **style)
        if gpu and "baseline" in row:
            style["markerfacecolor"] = "none"
            ax1.plot(b, row["baseline"]["tokens_per_s"], "--", label=f"{name} on {gpu}", **style)
            ax2.plot(b, np.asarray(row["baseline"]["J_per_token"]) * 1e3, "--", label=f"{name} on {gpu}", **style)
    run = ", ".join(f"{k} {result[k]}" for k in ("prompt", "generate", "attention") if k in result)
    ax1.set(xscale="log", yscale="log", xlabel="batch size (sequences)", ylabel="tokens / s",
            title=f"throughput ({result['mapping']}{'; ' + run if run else ''})")
    ax1.title.set_fontsize("medium")
    ax2.set(xscale="log", yscale="log", xlabel="batch size (sequences)", ylabel="energy per token (mJ)",
            title="energy per generated token")
    for ax in (ax1, ax2):
        ax.set_xticks(b, [str(int(v)) for v in b])
        ax.xaxis.set_minor_locator(_NULL())
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def plot_tier_map(m: dict[str, Any], max_tiers: int | None = None):
    """A heat map of the chip: x the tile, y the tier, colour what the tier holds (white:
    empty), with the roles' legend; the title gives the occupancy.

    Args:
        m: :func:`aimc.workloads.llm3d.api.tier_map`'s dict (``grid`` ``(n_tiers, n_tiles)``).
        max_tiers: show only the lowest ``max_tiers`` tiers (default: all of them).

    Returns:
        a matplotlib ``Figure``; its image's array is ``grid`` (cut at ``max_tiers``).
    """
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    grid = np.asarray(m["grid"])
    if max_tiers is not None:
        grid = grid[:max_tiers]
    roles = list(m["roles"])
    if len(roles) > len(ROLE_COLOURS):
        raise ValueError(f"plot_tier_map: {len(roles)} roles, colours for {len(ROLE_COLOURS)}")
    cmap = ListedColormap(ROLE_COLOURS[: len(roles)])
    norm = BoundaryNorm(np.arange(len(roles) + 1) - 0.5, len(roles))
    fig = Figure(figsize=(9, 5), layout="constrained")
    ax = fig.subplots()
    ax.imshow(grid, cmap=cmap, norm=norm, aspect="auto", origin="lower", interpolation="nearest",
              extent=(-0.5, grid.shape[1] - 0.5, -0.5, grid.shape[0] - 0.5))
    present = sorted({int(c) for c in np.unique(grid)} | {0})
    ax.legend(handles=[Patch(facecolor=ROLE_COLOURS[c], edgecolor="grey", label=roles[c]) for c in present],
              fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax.set(xlabel="tile", ylabel="tier")
    ax.set_title(f"{m['model']} on {m['chip']} ({m['mapping']})\n{100 * m['occupancy']:.1f} % of the tiers hold "
                 f"weights, {max(m['tiers_used'])} on the fullest tile", fontsize="medium")
    return fig


def save_figure(fig, path: str | Path) -> Path:
    """Save ``fig`` as a PNG at ``path`` atomically (:func:`aimc.outputs.write_atomic`; the
    caller has claimed ``path`` with :func:`aimc.outputs.claim_output`)."""
    from aimc.outputs import write_atomic

    return write_atomic(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=130))
