"""Which charts a results table supports, as plain data (no plotting library here).

:func:`build_charts` looks at the columns of a :class:`~aimc.report.run.RunTable` and
returns the charts it can fill, each a :class:`Chart` of :class:`Trace` s (mean ± std over
seeds per point):

* ``accuracy_vs_time``: ``m.accuracy`` vs a swept ``p.t_s`` (log time);
* ``accuracy_vs_adc_bits``: ``m.accuracy`` vs a swept ``p.adc.bits``;
* ``energy``: energy per inference per point, stacked by component when the table has
  ``m.energy_<part>_pJ`` columns, else ``m.energy_pJ``;
* ``pareto``: accuracy vs energy of every point and the Pareto front (no other point is
  both more accurate and cheaper);
* ``yield_vs_threshold`` / ``yield_vs_d0`` / ``cost_per_good_die``: functional yield
  (``m.alive`` and ``m.accuracy >= threshold``) per point, against the threshold and
  against ``p.d0_per_cm2``, and ``m.wafer_cost_usd / (m.dies_per_wafer * yield)``;
* ``<metric>_vs_<param>``: when none of the above fits, each metric vs each swept numeric
  parameter; a table with no swept numeric parameter gets each metric per point.

Other varying parameters split a chart into one trace per combination.

Example:
    >>> import numpy as np, pathlib
    >>> from aimc.report.run import RunTable
    >>> run = RunTable(pathlib.Path("."), {"point_id": np.array([0, 0, 1, 1]), "seed": np.array([0, 1, 0, 1]),
    ...     "p.adc.bits": np.array([4, 4, 8, 8]), "m.accuracy": np.array([0.5, 0.7, 0.9, 0.9])})
    >>> [c.key for c in build_charts(run)]
    ['accuracy_vs_adc_bits']
    >>> build_charts(run)[0].traces[0].y
    [0.6, 0.9]
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aimc.report.run import RunTable, distinct

__all__ = ["Trace", "Chart", "build_charts", "default_threshold"]


@dataclass
class Trace:
    """One series: ``x`` (numbers or labels), ``y``, optional ``err`` (std over seeds)."""

    name: str
    x: list[Any]
    y: list[float]
    err: list[float] | None = None
    mode: str = "lines+markers"  # or "markers", "bar"


@dataclass
class Chart:
    key: str
    title: str
    x_label: str
    y_label: str
    traces: list[Trace] = field(default_factory=list)
    log_x: bool = False
    stacked: bool = False


def _label(names: list[str], values: tuple) -> str:
    return ", ".join(f"{n[2:]}={v}" for n, v in zip(names, values)) or "all"


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _series(run: RunTable, x: str, y: str, by: list[str]) -> list[Trace]:
    """Mean ± std of ``y`` over rows per distinct ``x``, one trace per combination of ``by``."""
    c = run.columns
    groups: dict[tuple, dict[Any, list[float]]] = {}
    for i in range(len(c["point_id"])):
        key = tuple(c[b][i].item() if hasattr(c[b][i], "item") else c[b][i] for b in by)
        xv = c[x][i].item() if hasattr(c[x][i], "item") else c[x][i]
        groups.setdefault(key, {}).setdefault(xv, []).append(float(c[y][i]))
    out = []
    for key, pts in groups.items():
        xs = sorted(pts, key=lambda v: (isinstance(v, str), v))
        ys = [np.asarray(pts[v], dtype=float) for v in xs]
        mean = [float(np.nanmean(a)) if np.isfinite(a).any() else float("nan") for a in ys]
        std = [float(np.nanstd(a)) if np.isfinite(a).sum() > 1 else 0.0 for a in ys]
        out.append(Trace(_label(by, key), list(xs), mean, std))
    return out


def _points(run: RunTable) -> tuple[list[int], list[str]]:
    """Point ids in order and a label of each from its varying parameters."""
    c, vary = run.columns, run.varying()
    ids = distinct(c["point_id"])
    first = {int(p): i for i, p in reversed(list(enumerate(c["point_id"].tolist())))}
    labels = [_label(vary, tuple(c[v][first[int(p)]] for v in vary)) if vary else f"point {p}" for p in ids]
    return [int(p) for p in ids], labels


def _per_point(run: RunTable, metric: str) -> list[float]:
    c = run.columns
    ids, _ = _points(run)
    return [float(np.nanmean(c[metric][c["point_id"] == p])) if np.isfinite(c[metric][c["point_id"] == p]).any()
            else float("nan") for p in ids]


def default_threshold(run: RunTable) -> float:
    """98 % of the median accuracy of the living dies (the yield charts' default threshold)."""
    c = run.columns
    acc = c["m.accuracy"][(c["m.alive"] > 0.5) & np.isfinite(c["m.accuracy"])]
    return 0.98 * float(np.median(acc)) if acc.size else 0.0


def _good(run: RunTable, threshold: float) -> np.ndarray:
    c = run.columns
    return (c["m.alive"] > 0.5) & (np.nan_to_num(c["m.accuracy"], nan=-np.inf) >= threshold)


def _yield_charts(run: RunTable, threshold: float | None) -> list[Chart]:
    c = run.columns
    th = default_threshold(run) if threshold is None else float(threshold)
    ids, labels = _points(run)
    acc = c["m.accuracy"][np.isfinite(c["m.accuracy"])]
    lo, hi = (float(acc.min()), float(acc.max())) if acc.size else (0.0, 1.0)
    grid = [lo + (hi - lo) * k / 40 for k in range(41)]
    curve = Chart("yield_vs_threshold", "Functional yield vs accuracy threshold", "accuracy threshold",
                  "functional yield")
    for p, lab in zip(ids, labels):
        rows = c["point_id"] == p
        alive, a = c["m.alive"][rows] > 0.5, np.nan_to_num(c["m.accuracy"][rows], nan=-np.inf)
        curve.traces.append(Trace(lab, grid, [float((alive & (a >= t)).mean()) for t in grid], mode="lines"))
    charts = [curve]
    if "p.d0_per_cm2" in run.varying():
        good, by = _good(run, th), [p for p in run.varying() if p != "p.d0_per_cm2"]
        per: dict[str, list[tuple[float, float, float]]] = {}
        priced = "m.wafer_cost_usd" in c and "m.dies_per_wafer" in c
        for p in ids:
            rows = np.flatnonzero(c["point_id"] == p)
            i0, y = int(rows[0]), float(good[rows].mean())
            cost = (float(c["m.wafer_cost_usd"][i0] / (c["m.dies_per_wafer"][i0] * y)) if priced and y > 0
                    else float("nan"))
            key = _label(by, tuple(c[b][i0] for b in by))
            per.setdefault(key, []).append((float(c["p.d0_per_cm2"][i0]), y, cost))
        ych = Chart("yield_vs_d0", f"Functional yield (accuracy >= {th:.3f}) vs defect density",
                    "defect density D0 (/cm²)", "functional yield", log_x=True)
        cch = Chart("cost_per_good_die", f"Cost per good die (accuracy >= {th:.3f})", "defect density D0 (/cm²)",
                    "US$ per good die", log_x=True)
        for key, pts in per.items():
            pts.sort()
            ych.traces.append(Trace(key, [d for d, _, _ in pts], [y for _, y, _ in pts]))
            fin = [(d, k) for d, _, k in pts if math.isfinite(k)]
            cch.traces.append(Trace(key, [d for d, _ in fin], [k for _, k in fin]))
        charts.append(ych)
        if priced:
            charts.append(cch)
    return charts


def build_charts(run: RunTable, threshold: float | None = None) -> list[Chart]:
    """The charts ``run`` supports (module doc); ``threshold``: the yield charts' accuracy
    threshold (None: :func:`default_threshold`)."""
    c, vary, charts = run.columns, run.varying(), []
    numeric = [p for p in vary if c[p].dtype.kind in "iuf"]
    if "m.accuracy" in c:
        for param, key, title, xl, log in (("p.t_s", "accuracy_vs_time", "Accuracy vs time since programming",
                                            "time since programming (s)", True),
                                           ("p.adc.bits", "accuracy_vs_adc_bits", "Accuracy vs ADC resolution",
                                            "ADC bits", False)):
            if param in numeric:
                by = [p for p in vary if p != param]
                charts.append(Chart(key, title, xl, "accuracy", _series(run, param, "m.accuracy", by), log_x=log))
    ids, labels = _points(run)
    if "m.energy_pJ" in c:
        parts = [m for m in run.metrics if m.startswith("m.energy_") and m.endswith("_pJ") and m != "m.energy_pJ"]
        ch = Chart("energy", "Energy per inference" + (" by component" if parts else ""), "point", "energy (pJ)",
                   stacked=bool(parts))
        for m in parts or ["m.energy_pJ"]:
            ch.traces.append(Trace(m[2:-3] if parts else "energy", labels, _per_point(run, m), mode="bar"))
        charts.append(ch)
        if "m.accuracy" in c:
            e, a = _per_point(run, "m.energy_pJ"), _per_point(run, "m.accuracy")
            ok = [i for i in range(len(ids)) if math.isfinite(e[i]) and math.isfinite(a[i])]
            front, best = [], -math.inf
            for i in sorted(ok, key=lambda i: (e[i], -a[i])):
                if a[i] > best:
                    front.append(i)
                    best = a[i]
            charts.append(Chart("pareto", "Accuracy vs energy: Pareto front", "energy per inference (pJ)",
                                "accuracy", [Trace("points", [e[i] for i in ok], [a[i] for i in ok], mode="markers"),
                                             Trace("Pareto front", [e[i] for i in front], [a[i] for i in front])]))
    if "m.alive" in c and "m.accuracy" in c:
        charts.extend(_yield_charts(run, threshold))
    for param in ([] if charts else numeric):  # a table no chart above fits: each metric vs each parameter
        for m in run.metrics:
            charts.append(Chart(f"{m[2:]}_vs_{param[2:]}", f"{m[2:]} vs {param[2:]}", param[2:], m[2:],
                                _series(run, param, m, [p for p in vary if p != param])))
    if not charts:
        for m in run.metrics:
            charts.append(Chart(f"{m[2:]}_per_point", f"{m[2:]} per point", "point", m[2:],
                                [Trace(m[2:], labels, _per_point(run, m), mode="markers")]))
    return charts
