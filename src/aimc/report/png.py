"""One chart (:class:`~aimc.report.charts.Chart`) as a PNG for papers, drawn by matplotlib
(Agg canvas, no pyplot state).

Example:
    >>> import tempfile, pathlib
    >>> from aimc.report.charts import Chart, Trace
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.png"
    >>> save_png(Chart("k", "title", "x", "y", [Trace("a", [1, 2], [0.5, 0.7])]), p)
    >>> p.read_bytes()[:4] == b"\\x89PNG"
    True
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from aimc.report.charts import Chart

__all__ = ["save_png"]


def save_png(chart: Chart, path: str | Path) -> None:
    """Draw ``chart`` and save it as a PNG at ``path`` (format set explicitly, any name)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    many = len(chart.traces) > 6  # legend beside the axes, not over the data
    fig = Figure(figsize=(9.6 if many else 6.4, 4.0), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    bars = [t for t in chart.traces if t.mode == "bar"]
    if bars:
        labels = list(bars[0].x)
        pos = np.arange(len(labels))
        width = 0.8 if chart.stacked else 0.8 / len(bars)
        bottom = np.zeros(len(labels))
        for k, t in enumerate(bars):
            y = np.nan_to_num(np.asarray(t.y, dtype=float))
            if chart.stacked:
                ax.bar(pos, y, width, bottom=bottom, label=t.name)
                bottom += y
            else:
                ax.bar(pos + (k - (len(bars) - 1) / 2) * width, y, width, label=t.name)
        ax.set_xticks(pos, [str(v) for v in labels], rotation=30, ha="right", fontsize="small")
    for t in (t for t in chart.traces if t.mode != "bar"):
        x = [math.nan if v is None else v for v in t.x]
        style = "o" if t.mode == "markers" else ("-" if t.mode == "lines" else "o-")
        line = ax.plot(x, t.y, style, label=t.name, markersize=4)[0]
        if t.err and any(t.err):
            lo = [m - e for m, e in zip(t.y, t.err)]
            hi = [m + e for m, e in zip(t.y, t.err)]
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    if chart.log_x:
        ax.set_xscale("log")
    ax.set_xlabel(chart.x_label)
    ax.set_ylabel(chart.y_label)
    ax.set_title(chart.title, fontsize="medium")
    ax.grid(True, alpha=0.3)
    if many:
        ax.legend(fontsize="xx-small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    elif len(chart.traces) > 1 or bars:
        ax.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path, format="png")
