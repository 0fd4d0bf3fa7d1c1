"""The demo's figure: accuracy vs time since programming, mean ± std over chips."""
from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot_demo"]


def plot_demo(result: dict[str, Any], path: str | Path) -> Path:
    """Save accuracy vs time since programming (log x) as a PNG; return its path.

    Draws the mean over chips without and with GDC, each with a mean ± std band, and
    the digital (FP) accuracy as a dashed line. Uses matplotlib's Agg canvas directly,
    so it works headless and leaves pyplot's global state alone.

    Example:
        >>> from aimc.experiments.demo import run_demo
        >>> r = run_demo(n_chips=1, times_s=(1, 3600), chip="ideal")
        >>> plot_demo(r, "/tmp/aimc-demo-doctest.png").exists()
        True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = result["rows"]
    t = [r["t_s"] for r in rows]
    fig = Figure(figsize=(6.4, 4.0), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for key, label, color in (("no_gdc", "no compensation", "tab:red"), ("gdc", "with GDC", "tab:blue")):
        mean = [100 * r[f"{key}_mean"] for r in rows]
        std = [100 * r[f"{key}_std"] for r in rows]
        ax.plot(t, mean, "o-", color=color, label=f"{label} (mean of {result['n_chips']} chips)")
        ax.fill_between(t, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                        color=color, alpha=0.2, linewidth=0)
    ax.axhline(100 * result["fp_accuracy"], color="black", linestyle="--", label="digital (FP32)")
    ax.set_xscale("log")
    ax.set_xticks(t, [r["label"] for r in rows])
    ax.minorticks_off()
    ax.set_xlabel("time since programming")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{result['dataset']} CNN on {result['chip']}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
