"""Run directories in the results contract of aimc.sweep, written with pyarrow directly."""
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest


def sweep_rows(seeds: int = 3) -> dict[str, list]:
    """A 2 x 3 x 2 grid (chip, adc.bits, t_s) with ``seeds`` seeds per point."""
    rng = np.random.default_rng(0)
    cols: dict[str, list] = {k: [] for k in ("point_id", "seed", "p.chip", "p.adc.bits", "p.t_s", "m.accuracy",
                                             "m.mvm_error", "m.energy_pJ", "m.energy_adc_pJ", "m.energy_array_pJ",
                                             "m.latency_ns", "m.area_mm2", "m.tops_per_w", "aimc_version",
                                             "torch_version", "started_at", "wall_s")}
    pid = 0
    for chip in ("pcm-hermes", "rram-1t1r"):
        for bits in (4, 6, 8):
            for t in (1.0, 86400.0):
                for s in range(seeds):
                    adc, arr = 10.0 * 2 ** (bits - 4), 50.0 + (chip == "pcm-hermes") * 20
                    vals = [pid, s, chip, bits, t, 0.9 - 0.3 / bits - 0.01 * np.log10(t + 1) + 0.01 * rng.standard_normal(),
                            0.1 / bits, adc + arr, adc, arr, 130.0, 40.6, 10.0 / bits, "0.3", "2.13",
                            "2026-11-30T00:00:00+00:00", 0.1]
                    for k, v in zip(cols, vals):
                        cols[k].append(v)
                pid += 1
    return cols


def write_run(path: Path, cols: dict[str, list], csv_only: bool = False) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    table = pa.table(cols)
    if not csv_only:
        pq.write_table(table, path / "results.parquet")
    pacsv.write_csv(table, path / "results.csv")
    (path / "sweep.yaml").write_text("grid:\n  adc.bits: [4, 6, 8]\n")
    (path / "environment.json").write_text(json.dumps({"aimc_version": "0.3"}))
    return path


@pytest.fixture
def sweep_run(tmp_path) -> Path:
    return write_run(tmp_path / "run", sweep_rows())
