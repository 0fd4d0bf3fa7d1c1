"""The results of a sweep: a run directory and one tidy table.

The table contract (what ``aimc sweep`` writes and later readers rely on): one row per
``(point, seed)``, with the columns, in this order,

* ``point_id`` (int, the point's index in the sweep file's expansion) and ``seed`` (int,
  the chip's programming seed: ``aimc.program(model, seed)`` gives the same chip);
* ``p.<parameter>``: one column per parameter of the point: always ``p.chip`` (the base
  chip) and ``p.t_s`` (seconds since programming), then every swept parameter by its
  dotted chip-spec path, e.g. ``p.adc.bits``, ``p.ir_drop.r_wire_ohm``;
* ``m.<metric>``: one column per metric asked for: ``m.accuracy`` (top-1, in [0, 1]),
  ``m.mvm_error`` (relative output error of the analog layers), ``m.energy_pJ`` and
  ``m.latency_ns`` (one inference), ``m.area_mm2`` (chip), ``m.tops_per_w``; the
  cost metrics are the same for every seed of a point;
* ``aimc_version``, ``torch_version``, ``started_at`` (UTC, ISO 8601, when the point
  started) and ``wall_s`` (the point's wall time on its worker, seconds).

The run directory holds ``sweep.yaml`` (the sweep file as given), ``environment.json``
(versions, platform, executor, start time), ``model.safetensors`` (the trained digital
model every point programs), ``points/<point_id>.parquet`` (each finished point, written
once, atomically, by the process that collects results) and the consolidated
``results.parquet`` and ``results.csv`` (sorted by ``point_id``, ``seed``; rewritten
atomically whenever the run ends). A rerun on the same directory skips the points whose
files exist. Apart from ``started_at`` and ``wall_s``, the same sweep file gives the same
table on every executor.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = write_point(d, 3, [{"point_id": 3, "seed": 0, "p.chip": "ideal", "m.accuracy": 0.5}])
    >>> finished_points(d), read_table(consolidate(d)).num_rows
    ({3}, 1)
"""
from __future__ import annotations

import json
import os
import platform
import socket
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from aimc.outputs import write_atomic

__all__ = ["POINTS", "write_point", "finished_points", "consolidate", "read_table", "environment"]

#: Folder of the per-point files inside a run directory.
POINTS = "points"


def _point_file(run_dir: Path, point_id: int) -> Path:
    return run_dir / POINTS / f"{int(point_id):06d}.parquet"


def write_point(run_dir: str | os.PathLike, point_id: int, rows: list[dict[str, Any]]) -> Path:
    """Write one finished point's rows, atomically (a reader sees all of them or none)."""
    path = _point_file(Path(run_dir), point_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows)
    return write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def finished_points(run_dir: str | os.PathLike) -> set[int]:
    """The ids of the points whose results are on disk."""
    folder = Path(run_dir) / POINTS
    if not folder.is_dir():
        return set()
    return {int(p.stem) for p in folder.glob("*.parquet") if p.stem.isdigit()}


def consolidate(run_dir: str | os.PathLike) -> Path:
    """Join the per-point files into ``results.parquet`` and ``results.csv`` (sorted by
    ``point_id``, ``seed``; written atomically); returns the Parquet file."""
    run_dir = Path(run_dir)
    files = sorted((run_dir / POINTS).glob("*.parquet"))
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    rows.sort(key=lambda r: (r["point_id"], r["seed"]))
    table = pa.Table.from_pylist(rows)
    out = write_atomic(run_dir / "results.parquet", lambda tmp: pq.write_table(table, tmp))
    write_atomic(run_dir / "results.csv", lambda tmp: pacsv.write_csv(table, tmp))
    return out


def read_table(path: str | os.PathLike) -> pa.Table:
    """A results table (a run directory or its ``results.parquet``)."""
    path = Path(path)
    return pq.read_table(path / "results.parquet" if path.is_dir() else path)


def environment(executor: str, started_at: str) -> dict[str, Any]:
    """What ran the sweep: versions, platform, host, executor and start time."""
    import torch

    import aimc

    versions = {"aimc": aimc.__version__, "torch": torch.__version__, "pyarrow": pa.__version__,
                "python": sys.version.split()[0]}
    for mod in ("numpy", "dask", "distributed"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = None
    return {"versions": versions, "platform": platform.platform(), "machine": platform.machine(),
            "host": socket.gethostname(), "executor": executor, "started_at": started_at}


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """``data`` as indented JSON, atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8"))
