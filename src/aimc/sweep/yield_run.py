"""A sweep over defect density and redundancy, as a run directory the report reads.

:func:`yield_sweep` runs :func:`aimc.sweep.yield_.die_accuracies` for every
``(d0_per_cm2, spare_cols, prune)`` point (the same dies and seeds at every point, so
curves differ only by the parameter) and returns one row per (point, die) in the results
contract of :mod:`aimc.sweep` (``point_id``, ``seed``, ``p.*`` parameters, ``m.*``
metrics, versions). :func:`write_run` writes them as a run directory (``results.parquet``,
``results.csv``, ``sweep.yaml``, ``environment.json``; atomic, an existing directory is
refused unless ``force``), which ``aimc report`` turns into yield curves;
:func:`yield_table` condenses the rows into functional yield and cost per good die per point.

Example:
    >>> rows = [dict(point_id=0, seed=0, **{"p.d0_per_cm2": 1.0, "p.spare_cols": 0, "p.prune": False,
    ...              "m.alive": 1.0, "m.accuracy": 0.95, "m.dies_per_wafer": 100.0, "m.wafer_cost_usd": 4000.0})]
    >>> yield_table(rows, 0.9)[0]["yield"], yield_table(rows, 0.9)[0]["cost_per_good_die_usd"]
    (1.0, 40.0)
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import yaml
from torch import nn

import aimc
from aimc.outputs import write_atomic
from aimc.physics.defects import DefectModel
from aimc.sweep.yield_ import die_accuracies

__all__ = ["yield_sweep", "yield_table", "write_run", "digits_yield_sweep"]


def yield_sweep(model: nn.Module, evaluate: Callable[[nn.Module], float], d0_per_cm2: Sequence[float],
                spare_cols: Sequence[int] = (0,), prune: Sequence[bool] = (False,), n_dies: int = 20,
                defects: DefectModel | None = None, seed: int = 0,
                spare_rows: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Rows of a defect-density x redundancy sweep (module doc); ``defects`` gives every
    field but ``d0_per_cm2`` (default :class:`DefectModel`); ``spare_cols`` and
    ``spare_rows`` (default: none) are swept together (pairs, zipped), ``prune`` for each."""
    spare_rows = [0] * len(spare_cols) if spare_rows is None else list(spare_rows)
    if not d0_per_cm2 or not spare_cols or not prune or len(spare_rows) != len(spare_cols):
        raise ValueError("yield_sweep: d0_per_cm2, spare_cols and prune need at least one value each, and "
                         "spare_rows as many values as spare_cols")
    base = defects or DefectModel()
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    rows: list[dict[str, Any]] = []
    pid = 0
    for d0 in d0_per_cm2:
        for sp, sr in zip(spare_cols, spare_rows):
            for pr in prune:
                t0 = time.perf_counter()
                res = die_accuracies(model, evaluate, base.replace(d0_per_cm2=float(d0)), n_dies, int(sp), bool(pr),
                                     seed, spare_rows=int(sr))
                wall = (time.perf_counter() - t0) / n_dies
                for d in range(n_dies):
                    rows.append({"point_id": pid, "seed": d, "p.chip": res.config["chip"],
                                 "p.d0_per_cm2": float(d0), "p.spare_cols": int(sp), "p.spare_rows": int(sr), "p.prune": bool(pr),
                                 "p.alpha": base.alpha, "m.alive": float(res.alive[d]),
                                 "m.accuracy": float(res.accuracy[d]), "m.die_area_mm2": res.die_area_mm2,
                                 "m.dies_per_wafer": res.dies_per_wafer, "m.wafer_cost_usd": res.wafer_cost_usd,
                                 "aimc_version": aimc.__version__, "torch_version": torch.__version__,
                                 "started_at": started, "wall_s": wall})
                pid += 1
    return rows


def yield_table(rows: Sequence[dict[str, Any]], threshold: float) -> list[dict[str, Any]]:
    """Per point: functional yield at ``threshold`` (dies alive with accuracy >= it) with
    its binomial standard error, and cost per good die (US$; inf at zero yield)."""
    points: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        points.setdefault(int(r["point_id"]), []).append(r)
    out = []
    for pid in sorted(points):
        rs = points[pid]
        acc = np.array([r["m.accuracy"] for r in rs], dtype=float)
        good = np.array([r["m.alive"] for r in rs]) > 0.5
        good &= np.nan_to_num(acc, nan=-1.0) >= threshold
        y = float(good.mean())
        first = rs[0]
        cost = math.inf if y == 0 else first["m.wafer_cost_usd"] / (first["m.dies_per_wafer"] * y)
        out.append({"point_id": pid, **{k: v for k, v in first.items() if k.startswith("p.")},
                    "dies": len(rs), "yield": y, "yield_se": math.sqrt(y * (1 - y) / len(rs)),
                    "cost_per_good_die_usd": cost})
    return out


def write_run(rows: Sequence[dict[str, Any]], run_dir: str | os.PathLike, sweep: dict[str, Any],
              force: bool = False) -> Path:
    """Write ``rows`` as a run directory (module doc); returns its path.

    Raises:
        FileExistsError: ``run_dir`` exists and ``force`` is False.
        ValueError: no rows, or rows with different columns.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if not rows:
        raise ValueError("write_run: no rows to write")
    cols = list(rows[0])
    if any(list(r) != cols for r in rows):
        raise ValueError("write_run: every row must have the same columns in the same order")
    run = Path(run_dir)
    if run.exists() and not force:
        raise FileExistsError(f"{run} exists; pass --force to overwrite it")
    table = pa.Table.from_pylist(list(rows))
    tmp = Path(tempfile.mkdtemp(prefix=f".{run.name}.", dir=run.parent if run.parent.exists() else None))
    try:  # built beside the target, then moved in one step: no half-written run directory
        pq.write_table(table, tmp / "results.parquet")
        pacsv.write_csv(table, tmp / "results.csv")
        write_atomic(tmp / "sweep.yaml", lambda p: p.write_text(yaml.safe_dump(sweep, sort_keys=False)))
        env = {"aimc_version": aimc.__version__, "torch_version": torch.__version__,
               "python": platform.python_version(), "platform": platform.platform(), "executor": "local"}
        write_atomic(tmp / "environment.json", lambda p: p.write_text(json.dumps(env, indent=2)))
        run.parent.mkdir(parents=True, exist_ok=True)
        if run.exists():
            shutil.rmtree(run)
        shutil.move(str(tmp), str(run))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return run


def digits_yield_sweep(d0_per_cm2: Sequence[float] = (0.1, 1.0, 10.0, 30.0, 100.0),
                       spare_cols: Sequence[int] = (0, 8), prune: Sequence[bool] = (False,), n_dies: int = 200,
                       chip: str = "pcm-hermes", t_s: float = 86400.0, seed: int = 0,
                       defects: DefectModel | None = None,
                       spare_rows: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """The docs' yield table: the demo's digits CNN (trained digitally, seed ``seed``) on
    ``chip``, each die read ``t_s`` after programming with global drift compensation, test
    accuracy on the 360 held-out digits; rows as :func:`yield_sweep`."""
    from aimc.train.digital import accuracy, train_digital
    from aimc.workloads.data import load_dataset
    from aimc.workloads.recipes import RECIPES

    x_tr, y_tr, x_te, y_te = load_dataset("digits", seed=seed)
    r = RECIPES["digits"]
    model = r["model"](seed=seed)
    train_digital(model, x_tr, y_tr, epochs=r["epochs"], lr=r["lr"], batch_size=r["batch_size"], seed=seed)
    analog = aimc.convert(model, chip)

    def evaluate(m: nn.Module) -> float:
        aimc.drift(m, t_s)
        aimc.compensate(m)
        return accuracy(m, x_te, y_te, batch_size=512)

    return yield_sweep(analog, evaluate, d0_per_cm2, spare_cols, prune, n_dies, defects, seed, spare_rows)
