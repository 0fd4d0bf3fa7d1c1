"""The tile map of a deployment plan: which layer's blocks sit where, as text or a PNG.

Example:
    >>> from aimc.chips import load
    >>> from aimc.graph.workload import LayerWork
    >>> from aimc.compile import compile_model
    >>> plan = compile_model([LayerWork("a", "linear", 300, 64, 1), LayerWork("b", "linear", 64, 10, 1)],
    ...                      load("pcm-hermes"), spec="x")
    >>> print(tile_map_text(plan, width=8).splitlines()[1])
    round 0: A A + + + + + +
"""
from __future__ import annotations

import string
from pathlib import Path

import numpy as np

__all__ = ["tile_map_text", "plot_tile_map"]

_SYMBOLS = string.ascii_uppercase + string.ascii_lowercase + string.digits


def _symbol(i: int) -> str:
    return _SYMBOLS[i % len(_SYMBOLS)]


def _owner(plan) -> dict[tuple[int, int], int]:
    """(round, tile) -> the layer holding most cells on it."""
    pp = plan.placement
    cells: dict[tuple[int, int], dict[int, int]] = {}
    for r, t, lay, h, w in zip(pp.round, pp.tile, pp.layer, pp.rows, pp.cols):
        d = cells.setdefault((r, t), {})
        d[lay] = d.get(lay, 0) + h * w
    return {k: max(d, key=lambda x: d[x]) for k, d in cells.items()}


def tile_map_text(plan, width: int = 32) -> str:
    """One character per tile, ``width`` per line, per round: the letter of the layer with
    most cells on it (legend first), ``.`` a free tile, ``+`` a replica."""
    n_tiles = int(plan.chip["n_tiles"])
    owner = _owner(plan)
    legend = "  ".join(f"{_symbol(i)}={lp.name}" for i, lp in enumerate(plan.layers) if lp.assign == "analog")
    lines = [f"legend: {legend or '(no analog layers)'}"]
    for r, used in enumerate(plan.placement.tiles_per_round):
        reps = plan.placement.replicas if len(plan.placement.tiles_per_round) == 1 else 1
        chars = [_symbol(owner[(r, t)]) if (r, t) in owner else ("+" if t < used * reps else ".")
                 for t in range(n_tiles)]
        for s in range(0, n_tiles, width):
            head = f"round {r}:" if s == 0 else " " * len(f"round {r}:")
            lines.append(f"{head} {' '.join(chars[s: s + width])}")
    return "\n".join(lines)


def plot_tile_map(plan, path: str | Path, max_tiles: int = 256) -> Path:
    """Draw each round's tiles (up to ``max_tiles``) with every block as a rectangle at its
    rows and columns, coloured by layer; save a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    path = Path(path)
    pp, rows, cols = plan.placement, int(plan.chip["rows"]), int(plan.chip["cols"])
    n_show = min(int(plan.chip["n_tiles"]), max_tiles)
    rounds = max(1, len(pp.tiles_per_round))
    per_row = int(np.ceil(np.sqrt(n_show)))
    grid_h = int(np.ceil(n_show / per_row))
    fig, axes = plt.subplots(1, rounds, figsize=(min(6 * rounds, 24), 6), squeeze=False)
    cmap = plt.get_cmap("tab20")
    for r in range(rounds):
        ax = axes[0][r]
        for t in range(n_show):
            x0, y0 = (t % per_row) * (cols + cols // 8), (t // per_row) * (rows + rows // 8)
            ax.add_patch(Rectangle((x0, y0), cols, rows, fill=False, lw=0.4, ec="grey"))
        for lay, rr, tt, row, col, h, w in zip(pp.layer, pp.round, pp.tile, pp.row, pp.col, pp.rows, pp.cols):
            if rr != r or tt >= n_show:
                continue
            x0, y0 = (tt % per_row) * (cols + cols // 8), (tt // per_row) * (rows + rows // 8)
            ax.add_patch(Rectangle((x0 + col, y0 + row), w, h, color=cmap(lay % 20), lw=0))
        ax.set_xlim(0, per_row * (cols + cols // 8))
        ax.set_ylim(grid_h * (rows + rows // 8), 0)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"round {r}: {pp.tiles_per_round[r] if pp.tiles_per_round else 0} tiles")
    handles = [Rectangle((0, 0), 1, 1, color=cmap(i % 20)) for i, lp in enumerate(plan.layers) if lp.assign == "analog"]
    labels = [lp.name for lp in plan.layers if lp.assign == "analog"]
    if handles:
        fig.legend(handles[:40], labels[:40], loc="lower center", ncol=min(8, len(labels)), fontsize=7)
    fig.suptitle(f"{plan.model.spec} on {plan.chip.get('name')}: blocks on tiles ({plan.options.policy})")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
