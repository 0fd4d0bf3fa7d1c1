"""Assignment policies: the greedy sensitivity search, the energy policy's bound, and the
all-digital baseline priced in the chip's digital units."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import aimc.compile.assign as A
from aimc.chips import load
from aimc.compile import Calibration, compile_model
from aimc.compile.compiler import plan_cost
from aimc.cost import estimate
from aimc.graph.builders import LayerWorkIO, extract_workload_io
from aimc.graph.workload import LayerWork

HERMES = load("pcm-hermes")


def test_all_digital_is_the_estimator_with_every_layer_on_the_digital_units():
    work = [LayerWork("a", "linear", 256, 256, 4), LayerWork("b", "linear", 256, 10, 1)]
    plan = compile_model(work, HERMES, "all-digital")
    ref = estimate(work, HERMES, digital=["a", "b"])  # the chip's digital units (its SoC view)
    assert plan.expected.energy_pJ == ref.energy_pJ and plan.expected.tiles_used == 0
    assert plan.expected.all_digital_energy_pJ == ref.energy_pJ


def test_energy_policy_meets_the_bound_or_says_what_it_reaches():
    # a convolution with many positions: least energy on tiles (13.5 us per inference),
    # faster in the digital units (7.4 us), which cost 1.2x the energy
    work = [LayerWorkIO("conv", "conv", 288, 64, 1024, x_elements=32 * 32 * 32), LayerWork("fc", "linear", 1024, 256, 1)]
    free = compile_model(work, HERMES, "energy", latency_us=1e6)
    tight = compile_model(work, HERMES, "energy", latency_us=10.0)
    assert [lp.assign for lp in free.layers] == ["analog", "analog"]
    assert [lp.assign for lp in tight.layers] == ["digital", "analog"]
    assert tight.expected.latency_ns <= 10_000.0 < free.expected.latency_ns
    assert free.expected.energy_pJ < tight.expected.energy_pJ
    assert "moved to meet the latency bound" in tight.layers[0].reason
    with pytest.raises(ValueError, match=r"--latency-us 5: .* least latency reached is 7.4"):
        compile_model(work, HERMES, "energy", latency_us=5.0)
    with pytest.raises(ValueError, match="needs a latency bound: --latency-us"):
        compile_model(work, HERMES, "energy")


def _toy():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10),
                        nn.ReLU(), nn.Linear(10, 3), nn.ReLU(), nn.Linear(3, 2))
    x = torch.randn(64, 64)
    return net, x, net(x).argmax(1)  # labels = the FP model's answers: FP accuracy 1


def test_sensitivity_greedy_moves_the_most_sensitive_per_energy(monkeypatch):
    net, x, y = _toy()
    drops = {"0": 0.002, "2": 0.03, "4": 0.006, "6": 0.001, "8": 0.5}  # '2' hurts most; '8' is cheaper digital

    def fake_eval(model, chip, analog, x_, y_, seeds, times_s, compensated=True):
        return [[1.0 - sum(drops[n] for n in analog)] * len(seeds) for _ in times_s]

    monkeypatch.setattr(A, "evaluate", fake_eval)
    work = extract_workload_io(net, x[:4])
    cal = Calibration(net, x, y)
    plan = compile_model(work, HERMES, "sensitivity", budget=0.01, calibration=cal)
    where = {lp.name: lp.assign for lp in plan.layers}
    # '8' (3x2) costs less in the digital units than on a tile: digital from the start.
    # Energy saved by analog (pcm-hermes SoC pricing): '0' 5286 pJ, '2' 11003, '4' 782, '6' 4.4,
    # so drop per pJ saved orders '6' (2.3e-4), '4' (7.7e-6), '2' (2.7e-6), '0' (3.8e-7):
    # '6' and '4' go digital first (1 - 0.032 misses the budget), then '2' (1 - 0.002 meets it)
    assert where == {"0": "analog", "2": "digital", "4": "digital", "6": "digital", "8": "digital"}
    assert "cheaper" in plan.layers[4].reason and plan.layers[4].sensitivity is None
    assert [plan.layers[i].reason[:16] for i in (3, 2, 1)] == [f"kept digital ({k}." for k in (1, 2, 3)]
    assert plan.accuracy.mean == pytest.approx(0.998) and plan.accuracy.all_analog == pytest.approx(0.461)
    assert plan.layers[1].sensitivity == pytest.approx(0.03)
    loose = compile_model(work, HERMES, "sensitivity", budget=0.05, calibration=cal)
    assert [lp.assign for lp in loose.layers] == ["analog", "analog", "analog", "analog", "digital"]
    strict = compile_model(work, HERMES, "sensitivity", budget=0.0, calibration=cal)
    assert all(lp.assign == "digital" for lp in strict.layers) and strict.accuracy.mean == 1.0


def test_sensitivity_on_the_ideal_chip_keeps_everything_analog():
    net, x, y = _toy()
    plan = compile_model(extract_workload_io(net, x[:4]), "ideal", "sensitivity", budget=0.0,
                         calibration=Calibration(net, x, y), seeds=1)
    assert all(lp.sensitivity in (0.0, None) for lp in plan.layers)
    assert [lp.assign for lp in plan.layers][:4] == ["analog"] * 4
    assert plan.accuracy.mean == plan.accuracy.fp == 1.0


def test_sensitivity_needs_budget_and_data():
    work = [LayerWork("a", "linear", 4, 4, 1)]
    with pytest.raises(ValueError, match="--budget"):
        compile_model(work, HERMES, "sensitivity")
    with pytest.raises(ValueError, match="needs a model with weights and calibration data"):
        compile_model(work, HERMES, "sensitivity", budget=0.01)
    with pytest.raises(ValueError, match="unknown policy 'fastest'"):
        compile_model(work, HERMES, "fastest")


def test_one_round_prices_exactly_as_estimate():
    work = [LayerWork("a", "linear", 1000, 300, 7)]
    cost = plan_cost(work, HERMES, set())
    assert cost.energy_pJ == estimate(work, HERMES).energy_pJ  # 1 block per tile: the same tile count
