"""``aimc report``: a run directory -> one self-contained HTML report and PNGs for papers.

The HTML page carries plotly.js inline (no CDN: it opens offline, e.g. from an e-mail
attachment), one interactive chart per :class:`~aimc.report.charts.Chart` (a ``div`` with
id ``chart-<key>``), the sweep file and the environment of the run. The PNGs are drawn by
matplotlib from the same chart data (:mod:`aimc.report.png`). Every file goes through
:mod:`aimc.outputs`: existing files are refused unless ``force``, each is written
atomically, and all are checked before the first is written.

Example:
    >>> import tempfile, pathlib, pyarrow as pa, pyarrow.parquet as pq
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> pq.write_table(pa.table({"point_id": [0, 1], "seed": [0, 0], "p.t_s": [1.0, 3600.0],
    ...                          "m.accuracy": [0.9, 0.8]}), d / "results.parquet")
    >>> [p.name for p in write_report(d, png=False)]
    ['report.html']
"""
from __future__ import annotations

import functools
import html
import json
import math
import os
from pathlib import Path
from typing import Any

from aimc.outputs import claim_output, write_atomic
from aimc.report.charts import Chart, build_charts
from aimc.report.run import RunTable, load_run

__all__ = ["write_report", "render_html"]


def _clean(v: list[Any]) -> list[Any]:
    return [None if isinstance(x, float) and not math.isfinite(x) else x for x in v]


def _figure(chart: Chart) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for t in chart.traces:
        err = None if not t.err or not any(t.err) else dict(type="data", array=_clean(t.err), visible=True)
        if t.mode == "bar":
            fig.add_trace(go.Bar(name=t.name, x=_clean(t.x), y=_clean(t.y), error_y=err))
        else:
            fig.add_trace(go.Scatter(name=t.name, x=_clean(t.x), y=_clean(t.y), mode=t.mode, error_y=err))
    fig.update_layout(title=chart.title, xaxis_title=chart.x_label, yaxis_title=chart.y_label,
                      barmode="stack" if chart.stacked else "group", template="plotly_white",
                      margin=dict(l=60, r=20, t=50, b=50), height=420)
    if chart.log_x:
        fig.update_xaxes(type="log")
    return fig


def render_html(run: RunTable, charts: list[Chart]) -> str:
    """The report page (module doc) as a string."""
    from plotly.offline import get_plotlyjs

    divs = [_figure(c).to_html(full_html=False, include_plotlyjs=False, div_id=f"chart-{c.key}",
                               config={"displaylogo": False}) for c in charts]
    extras = []
    for name in ("sweep.yaml", "environment.json"):
        f = run.path / name
        if f.is_file():
            extras.append(f"<h3>{name}</h3><pre>{html.escape(f.read_text(encoding='utf-8', errors='replace'))}</pre>")
    c = run.columns
    summary = (f"{len(c['point_id'])} rows, {run.n_points} points; parameters: "
               f"{html.escape(', '.join(p[2:] for p in run.params) or 'none')}; metrics: "
               f"{html.escape(', '.join(m[2:] for m in run.metrics))}")
    index = json.dumps([{"key": ch.key, "points": [len(t.x) for t in ch.traces]} for ch in charts])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>aimc report: {html.escape(run.path.name)}</title>
<script type="text/javascript">{get_plotlyjs()}</script>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
pre{{background:#f6f6f6;padding:.6em;overflow:auto}}</style></head>
<body><h1>aimc report: {html.escape(run.path.name)}</h1><p>{summary}</p>
{''.join(f'<section>{d}</section>' for d in divs)}
{''.join(extras)}
<script type="application/json" id="aimc-charts">{html.escape(index, quote=False)}</script>
</body></html>
"""


def _png(chart: Chart, path: Path) -> None:
    from aimc.report.png import save_png

    save_png(chart, path)


def write_report(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None, force: bool = False,
                 png: bool = True, threshold: float | None = None) -> list[Path]:
    """Write ``report.html`` (and one PNG per chart) for a run directory; returns the paths.

    Args:
        run_dir: the run directory (:func:`aimc.report.run.load_run` checks it).
        out_dir: where to write (default ``RUN_DIR/report``).
        force: overwrite existing report files.
        png: also write the PNGs (needs matplotlib).
        threshold: accuracy threshold of the yield charts (default: 98 % of the median).

    Raises:
        RunError: a malformed run directory.
        FileExistsError: a report file exists and ``force`` is False (nothing is written then).
    """
    run = load_run(run_dir)
    charts = build_charts(run, threshold)
    out = Path(out_dir) if out_dir is not None else run.path / "report"
    names = ["report.html"] + ([f"{c.key}.png" for c in charts] if png else [])
    policy = "overwrite" if force else "error"
    paths = [claim_output(out / n, if_exists=policy, mkdir=False,
                          hint="pass --force to overwrite the report or --out to write it elsewhere") for n in names]
    page = render_html(run, charts)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    write_atomic(paths[0], lambda p: p.write_text(page, encoding="utf-8"))
    if png:
        for chart, path in zip(charts, paths[1:]):
            write_atomic(path, functools.partial(_png, chart))
    return paths
