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


def test_all_digital_is_the_estimator_with_every_matrix_digital():
    work = [LayerWork("a", "linear", 256, 256, 4), LayerWork("b", "linear", 256, 10, 1)]
    plan = compile_model(work, HERMES, "all-digital")
    ref = estimate([LayerWorkIO(**{f: getattr(w, f) for f in w.__dataclass_fields__}, stationary=False)
                    for w in work], HERMES)
    assert plan.expected.energy_pJ == ref.energy_pJ and plan.expected.tiles_used == 0
    assert plan.expected.all_digital_energy_pJ == ref.energy_pJ


def test_energy_policy_meets_the_bound_or_says_what_it_reaches():
    work = [LayerWork("conv", "conv", 288, 64, 256), LayerWork("fc", "linear", 1024, 256, 1)]
    free = compile_model(work, HERMES, "energy", latency_us=1e6)
    tight = compile_model(work, HERMES, "energy", latency_us=1.0)  # least energy: 3.5 us
    assert tight.expected.latency_ns <= 1000.0 < free.expected.latency_ns
    assert free.expected.energy_pJ <= tight.expected.energy_pJ
    with pytest.raises(ValueError, match=r"--latency-us 1e-06: .* least latency reached"):
        compile_model(work, HERMES, "energy", latency_us=1e-6)
    with pytest.raises(ValueError, match="needs a latency bound: --latency-us"):
        compile_model(work, HERMES, "energy")


def _toy():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10),
                        nn.ReLU(), nn.Linear(10, 3))
    x = torch.randn(64, 64)
    return net, x, net(x).argmax(1)  # labels = the FP model's answers: FP accuracy 1


def test_sensitivity_greedy_moves_the_most_sensitive_per_energy(monkeypatch):
    net, x, y = _toy()
    drops = {"0": 0.002, "2": 0.03, "4": 0.006, "6": 0.5}  # '2' hurts most; '6' is cheaper digital

    def fake_eval(model, chip, analog, x_, y_, seeds, times_s, compensated=True):
        return [[1.0 - sum(drops[n] for n in analog)] * len(seeds) for _ in times_s]

    monkeypatch.setattr(A, "evaluate", fake_eval)
    work = extract_workload_io(net, x[:4])
    cal = Calibration(net, x, y)
    plan = compile_model(work, HERMES, "sensitivity", budget=0.01, calibration=cal)
    where = {lp.name: lp.assign for lp in plan.layers}
    # '6' (10x3) costs less in the digital units than on a tile: digital from the start.
    # Energy saved by analog (pcm-hermes): '0' 327 pJ, '2' 1032 pJ, '4' 51 pJ, so drop per pJ
    # saved puts '4' (1.2e-4) before '2' (2.9e-5) before '0' (6e-6): '4' goes digital first,
    # 1 - 0.032 misses the budget, then '2': 1 - 0.002 meets it.
    assert where == {"0": "analog", "2": "digital", "4": "digital", "6": "digital"}
    assert "cheaper" in plan.layers[3].reason and plan.layers[3].sensitivity is None
    assert plan.layers[2].reason.startswith("kept digital (1.") and plan.layers[1].reason.startswith("kept digital (2.")
    assert plan.accuracy.mean == pytest.approx(0.998) and plan.accuracy.all_analog == pytest.approx(0.462)
    assert plan.layers[1].sensitivity == pytest.approx(0.03)
    loose = compile_model(work, HERMES, "sensitivity", budget=0.05, calibration=cal)
    assert [lp.assign for lp in loose.layers] == ["analog", "analog", "analog", "digital"]
    strict = compile_model(work, HERMES, "sensitivity", budget=0.0, calibration=cal)
    assert all(lp.assign == "digital" for lp in strict.layers) and strict.accuracy.mean == 1.0


def test_sensitivity_on_the_ideal_chip_keeps_everything_analog():
    net, x, y = _toy()
    plan = compile_model(extract_workload_io(net, x[:4]), "ideal", "sensitivity", budget=0.0,
                         calibration=Calibration(net, x, y), seeds=1)
    assert all(lp.sensitivity in (0.0, None) for lp in plan.layers)
    assert [lp.assign for lp in plan.layers][:3] == ["analog", "analog", "analog"]
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
