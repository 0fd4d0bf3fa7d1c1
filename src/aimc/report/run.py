"""Read a run directory's results table, checked before anything is drawn.

A run directory (:mod:`aimc.sweep`) holds ``results.parquet`` (and ``results.csv``),
one row per (point, seed): ``point_id`` and ``seed`` (integers), swept parameters
``p.<name>``, metrics ``m.<name>`` (numbers; NaN allowed, e.g. the accuracy of a dead
die) and provenance columns (``aimc_version``, ...). :func:`load_run` reads the Parquet
table (the CSV when there is no Parquet file) and refuses, with the file and column
named, anything else: a missing or unreadable file, an empty table, missing or
non-integer ``point_id``/``seed``, duplicate (point, seed) rows, no metric column, or a
metric column that is not numeric.

Example:
    >>> import tempfile, pathlib, pyarrow as pa, pyarrow.parquet as pq
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> pq.write_table(pa.table({"point_id": [0, 0], "seed": [0, 1], "p.adc.bits": [4, 4],
    ...                          "m.accuracy": [0.9, 0.8]}), d / "results.parquet")
    >>> run = load_run(d)
    >>> run.params, run.metrics, run.n_points
    (['p.adc.bits'], ['m.accuracy'], 1)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RunTable", "RunError", "load_run"]


class RunError(ValueError):
    """A run directory or its table cannot be reported; the message names the file and column."""


@dataclass
class RunTable:
    """The checked table: ``columns`` maps each column name to a numpy array (rows in file order)."""

    path: Path
    columns: dict[str, np.ndarray]

    @property
    def params(self) -> list[str]:
        return [c for c in self.columns if c.startswith("p.")]

    @property
    def metrics(self) -> list[str]:
        return [c for c in self.columns if c.startswith("m.")]

    @property
    def n_points(self) -> int:
        return int(np.unique(self.columns["point_id"]).size)

    def varying(self) -> list[str]:
        """Parameters with more than one distinct value."""
        return [p for p in self.params if len(distinct(self.columns[p])) > 1]


def distinct(a: np.ndarray) -> list[Any]:
    """Distinct values of a column in first-seen order (None/NaN kept as one value)."""
    seen: dict[Any, None] = {}
    for v in a.tolist():
        key = "nan" if isinstance(v, float) and v != v else v
        seen.setdefault(key, None)
    return list(seen)


def _read(run: Path) -> tuple[Path, Any]:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    pq_file, csv_file = run / "results.parquet", run / "results.csv"
    if pq_file.is_file():
        src, reader = pq_file, pq.read_table
    elif csv_file.is_file():
        src, reader = csv_file, pacsv.read_csv
    else:
        raise RunError(f"{run}: no results.parquet or results.csv (is this a run directory of `aimc sweep`?)")
    try:
        return src, reader(src)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise RunError(f"{src}: not a readable table ({' '.join(str(e).split())[:200]})") from None


def load_run(run_dir: str | os.PathLike) -> RunTable:
    """The checked results table of ``run_dir`` (module doc).

    Raises:
        RunError: what is wrong, naming the file and column.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise RunError(f"{run}: not a directory (give the run directory that `aimc sweep` wrote)")
    src, table = _read(run)
    names = list(table.column_names)
    if len(set(names)) != len(names):
        raise RunError(f"{src}: duplicate column names")
    for col in ("point_id", "seed"):
        if col not in names:
            raise RunError(f"{src}: column '{col}' is missing (columns: {', '.join(names[:12]) or 'none'})")
    if table.num_rows == 0:
        raise RunError(f"{src}: the table has no rows")
    cols: dict[str, np.ndarray] = {}
    for name in names:
        a = table.column(name).to_numpy(zero_copy_only=False)
        if name in ("point_id", "seed"):
            if a.dtype.kind not in "iu":
                raise RunError(f"{src}: column '{name}' must hold integers, got {table.schema.field(name).type}")
        elif name.startswith("m."):
            if a.dtype.kind == "b":
                a = a.astype(float)
            if a.dtype.kind not in "iuf":
                raise RunError(f"{src}: metric column '{name}' must be numeric, got {table.schema.field(name).type}")
            a = a.astype(float)
        cols[name] = a
    if not any(n.startswith("m.") for n in names):
        raise RunError(f"{src}: no metric column (names starting with 'm.', e.g. m.accuracy)")
    keys = set(zip(cols["point_id"].tolist(), cols["seed"].tolist()))
    if len(keys) != table.num_rows:
        raise RunError(f"{src}: duplicate (point_id, seed) rows")
    return RunTable(run, cols)
