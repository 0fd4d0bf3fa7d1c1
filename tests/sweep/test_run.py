"""Running a sweep locally: the table contract, resuming, and a run cut short."""
import json

import pyarrow.csv as pacsv
import pytest

from aimc.sweep.executors import LocalExecutor
from aimc.sweep.results import finished_points, read_table
from aimc.sweep.run import run_sweep

from .conftest import rows

BODY = "seeds: [0, 5]\ngrid: {adc.bits: [4, 8], t_s: [1, 86400]}\nmetrics: [accuracy, mvm_error, energy_pJ]\n"


class Counting(LocalExecutor):
    """The in-process executor, counting tasks and failing after ``fail_after`` results."""

    def __init__(self, fail_after=None):
        super().__init__(workers=0)
        self.ran, self.fail_after = [], fail_after

    def run(self, tasks, fn, on_result):
        def wrapped(key, result):
            self.ran.append(key)
            on_result(key, result)
            if self.fail_after is not None and len(self.ran) >= self.fail_after:
                raise KeyboardInterrupt("stopped")
        super().run(tasks, fn, wrapped)


def test_table_contract(tiny, tmp_path):
    run = run_sweep(tiny(BODY), tmp_path / "run", workers=0)
    t = read_table(run)
    assert t.column_names == ["point_id", "seed", "p.chip", "p.t_s", "p.adc.bits", "m.accuracy", "m.mvm_error",
                              "m.energy_pJ", "aimc_version", "torch_version", "started_at", "wall_s"]
    got = t.to_pylist()
    assert [(r["point_id"], r["seed"]) for r in got] == [(p, s) for p in range(4) for s in (0, 5)]
    assert all(0 <= r["m.accuracy"] <= 1 and r["m.mvm_error"] > 0 and r["m.energy_pJ"] > 0 for r in got)
    by = {(r["p.adc.bits"], r["p.t_s"]): r["m.mvm_error"] for r in got if r["seed"] == 0}
    assert by[(4, 1.0)] > by[(8, 1.0)]  # a 4-bit ADC reads worse than an 8-bit one
    assert pacsv.read_csv(run / "results.csv").num_rows == t.num_rows
    assert {p.name for p in run.iterdir()} >= {"sweep.yaml", "environment.json", "model.safetensors", "points",
                                               "results.parquet", "results.csv"}
    env = json.loads((run / "environment.json").read_text())
    assert env["executor"] == "local" and env["versions"]["aimc"] == got[0]["aimc_version"]
    assert (run / "sweep.yaml").read_text() == (tmp_path / "s.yaml").read_text()


def test_a_stopped_run_keeps_its_points_and_a_rerun_finishes_only_the_rest(tiny, tmp_path):
    f = tiny(BODY)
    whole = rows(read_table(run_sweep(f, tmp_path / "whole", workers=0)))
    first = Counting(fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(f, tmp_path / "run", executor=first)
    assert finished_points(tmp_path / "run") == set(first.ran) and len(first.ran) == 3
    assert read_table(tmp_path / "run").num_rows == 3 * 2  # consolidated on the way out
    second = Counting()
    run_sweep(f, tmp_path / "run", executor=second)
    assert sorted(second.ran) == sorted(set(range(4)) - set(first.ran))  # nothing run twice
    assert rows(read_table(tmp_path / "run")) == whole  # same seeds, same table


def test_a_run_directory_of_another_sweep_is_refused(tiny, tmp_path):
    run_sweep(tiny("seeds: 1\n"), tmp_path / "run", workers=0)
    with pytest.raises(ValueError, match="holds another sweep"):
        run_sweep(tiny("seeds: 2\n", "other.yaml"), tmp_path / "run", workers=0)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a run directory"):
        run_sweep(tiny("seeds: 1\n"), tmp_path / "busy", workers=0)


@pytest.mark.slow  # process start-up: ~20 s on a busy 2-core machine
def test_two_local_processes_give_the_in_process_table(tiny, tmp_path):
    f = tiny("seeds: 2\ngrid: {adc.bits: [5, 7]}\n")
    a = rows(read_table(run_sweep(f, tmp_path / "a", workers=0)))
    b = rows(read_table(run_sweep(f, tmp_path / "b", workers=2)))
    assert a == b
