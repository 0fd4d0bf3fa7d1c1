"""Die yield end to end: zero-defect limit, redundancy helps, cost per good die, run directory."""
import math

import numpy as np
import pytest
import torch

import aimc
from aimc.physics.defects import DefectModel
from aimc.report.charts import build_charts
from aimc.report.run import load_run
from aimc.sweep.yield_ import (cost_per_good_die, die_accuracies, die_area_mm2, dies_per_wafer,
                               functional_yield, wafer_cost_usd)
from aimc.sweep.yield_run import write_run, yield_sweep, yield_table
from aimc.chips import load

X = torch.randn(256, 64, generator=torch.Generator().manual_seed(0))


def _model():
    torch.manual_seed(0)
    digital = torch.nn.Sequential(torch.nn.Linear(64, 32))
    return digital, aimc.convert(digital, "ideal")


def _agreement(digital):
    want = digital(X).argmax(dim=1)

    def evaluate(m):  # share of inputs whose arg-max output the faulty die keeps
        with torch.no_grad():
            return float((m(X).argmax(dim=1) == want).float().mean())
    return evaluate


def test_dies_per_wafer_and_price():
    a = 100.0  # pi 300^2 / 400 - pi 300 / sqrt(200)
    assert dies_per_wafer(a) == pytest.approx(math.pi * 90000 / 400 - math.pi * 300 / math.sqrt(200), rel=1e-12)
    assert wafer_cost_usd(14.0) == 3984.0 and wafer_cost_usd(5.0) == 16988.0
    with pytest.raises(ValueError, match="wafer price"):
        wafer_cost_usd(28.0)
    with pytest.raises(ValueError, match="area_mm2"):
        dies_per_wafer(0.0)
    tile, area = die_area_mm2(load("pcm-hermes"))
    assert tile == pytest.approx(0.635) and area == pytest.approx(64 * 0.635)  # HERMES core area, cost preset
    assert die_area_mm2(load("pcm-hermes"), 8)[1] == pytest.approx(64 * 0.635 * 264 / 256)


def test_zero_defects_every_die_good():
    digital, analog = _model()
    res = die_accuracies(analog, _agreement(digital), DefectModel(d0_per_cm2=0.0), 4, spare_cols=8, prune=True)
    assert res.alive.all() and np.all(res.accuracy == 1.0)  # ideal chip, no fault: exact
    assert functional_yield(res, [1.0]).tolist() == [1.0]
    assert res.dies_per_wafer == dies_per_wafer(res.die_area_mm2)
    assert cost_per_good_die(res, 0.5) == pytest.approx(2 * res.wafer_cost_usd / res.dies_per_wafer, rel=1e-12)
    assert cost_per_good_die(res, 0.0) == math.inf


def test_fatal_defects_follow_negative_binomial():
    digital, analog = _model()
    d = DefectModel(d0_per_cm2=2.0, alpha=2.0, fatal_share=1.0, row_share=0.0, col_share=0.0)
    n = 400
    res = die_accuracies(analog, lambda m: 1.0, d, n, seed=5)
    y = d.die_yield(res.die_area_mm2)
    assert abs(res.alive.mean() - y) <= 4 * math.sqrt(y * (1 - y) / n)


def test_redundancy_strictly_helps():
    digital, analog = _model()
    # ~80 defects per tile, none fatal, no dead rows (spare columns cannot mend a row)
    d = DefectModel(d0_per_cm2=20000.0, alpha=None, fatal_share=0.0, row_share=0.0)
    ev, n = _agreement(digital), 48
    base = die_accuracies(analog, ev, d, n, spare_cols=0, seed=1)
    spared = die_accuracies(analog, ev, d, n, spare_cols=16, seed=1)
    pruned = die_accuracies(analog, ev, d, n, spare_cols=16, prune=True, seed=1)
    se = math.sqrt((base.accuracy.var() + spared.accuracy.var()) / n)
    assert spared.accuracy.mean() - base.accuracy.mean() > 4 * se
    assert pruned.accuracy.mean() >= spared.accuracy.mean() - 4 * se
    th = [float(np.quantile(base.accuracy, 0.5))]
    assert functional_yield(spared, th)[0] > functional_yield(base, th)[0]


def test_bad_input():
    digital, analog = _model()
    with pytest.raises(ValueError, match="no analog layers"):
        die_accuracies(digital, lambda m: 1.0, DefectModel(), 2)
    with pytest.raises(ValueError, match="n_dies"):
        die_accuracies(analog, lambda m: 1.0, DefectModel(), 0)
    with pytest.raises(ValueError, match="at least one value"):
        yield_sweep(analog, lambda m: 1.0, [])


def test_run_directory_feeds_the_report(tmp_path):
    digital, analog = _model()
    rows = yield_sweep(analog, _agreement(digital), [0.0, 30000.0], spare_cols=[0, 16], n_dies=3,
                       defects=DefectModel(fatal_share=0.0, alpha=None))
    table = yield_table(rows, 1.0)
    assert [r["yield"] for r in table][:2] == [1.0, 1.0]  # no defects: every die good
    run = write_run(rows, tmp_path / "y", {"kind": "yield"})
    with pytest.raises(FileExistsError, match="--force"):
        write_run(rows, tmp_path / "y", {"kind": "yield"})
    keys = {c.key for c in build_charts(load_run(run), threshold=1.0)}
    assert {"yield_vs_threshold", "yield_vs_d0", "cost_per_good_die"} <= keys
