"""Assignment policies: the greedy sensitivity search, the energy policy's bound, and the
all-digital baseline priced in the chip's digital units."""
from __future__ import annotations

import pytest
import torch
from scipy.stats import t as student_t
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


N_FAKE = 1000  # images of the fake calibration outcomes: drops resolved to 0.1 point


def _fake_outcomes(drops, spread=None):
    """A stand-in for ``evaluate_correct``: on chip ``k`` the plan loses the first
    ``N_FAKE * (sum of its analog layers' drops) * spread[k]`` images (FP right on all)."""
    def fake(model, chip, analog, x, y, seeds, times_s, compensated=True):
        ok = torch.ones(len(times_s), len(seeds), N_FAKE, dtype=torch.bool)
        for k, _ in enumerate(seeds):
            lost = round(N_FAKE * sum(drops[n] for n in analog) * (spread[k] if spread else 1.0))
            ok[:, k, :lost] = False
        return ok
    return fake


def test_sensitivity_greedy_moves_the_most_sensitive_per_energy(monkeypatch):
    net, x, y = _toy()
    drops = {"0": 0.002, "2": 0.03, "4": 0.006, "6": 0.001, "8": 0.5}  # '2' hurts most; '8' is cheaper digital
    monkeypatch.setattr(A, "evaluate_correct", _fake_outcomes(drops))
    work = extract_workload_io(net, x[:4])
    cal = Calibration(net, x, y)
    plan = compile_model(work, HERMES, "sensitivity", budget=0.01, calibration=cal, confidence=0.5)
    where = {lp.name: lp.assign for lp in plan.layers}
    # '8' (3x2) costs less in the digital units than on a tile: digital from the start.
    # Energy saved by analog (pcm-hermes SoC pricing): '0' 5286 pJ, '2' 11003, '4' 782, '6' 4.4,
    # so drop per pJ saved orders '6' (2.3e-4), '4' (7.7e-6), '2' (2.7e-6), '0' (3.8e-7):
    # '6' and '4' go digital first (1 - 0.032 misses the budget), then '2' (1 - 0.002 meets it)
    assert where == {"0": "analog", "2": "digital", "4": "digital", "6": "digital", "8": "digital"}
    assert "cheaper" in plan.layers[4].reason and plan.layers[4].sensitivity is None
    assert [plan.layers[i].reason[:16] for i in (3, 2, 1)] == [f"kept digital ({k}." for k in (1, 2, 3)]
    assert plan.accuracy.mean == pytest.approx(0.998) and plan.accuracy.all_analog == pytest.approx(0.461)
    assert plan.accuracy.drop_upper == pytest.approx(0.002)  # confidence 0.5: the point estimate
    assert plan.layers[1].sensitivity == pytest.approx(0.03)
    loose = compile_model(work, HERMES, "sensitivity", budget=0.05, calibration=cal, confidence=0.5)
    assert [lp.assign for lp in loose.layers] == ["analog", "analog", "analog", "analog", "digital"]
    strict = compile_model(work, HERMES, "sensitivity", budget=0.0, calibration=cal, confidence=0.5)
    assert all(lp.assign == "digital" for lp in strict.layers) and strict.accuracy.mean == 1.0


def test_sensitivity_refuses_a_plan_that_meets_the_budget_only_on_the_mean(monkeypatch):
    net, x, y = _toy()
    # '0' alone loses 0.5 points on average over 5 chips, but 0, 0, 0, 1.0 and 1.5 points
    # chip by chip: the mean meets a 1-point budget; its 95 % bound (se 0.34 points at
    # df 5.5) does not, so '0' goes digital ('2', '4', '6' lose nothing).
    drops = {"0": 0.005, "2": 0.0, "4": 0.0, "6": 0.0, "8": 0.0}
    spread = [0.0, 0.0, 0.0, 2.0, 3.0]
    monkeypatch.setattr(A, "evaluate_correct", _fake_outcomes(drops, spread))
    work, cal = extract_workload_io(net, x[:4]), Calibration(net, x, y)
    point = compile_model(work, HERMES, "sensitivity", budget=0.01, calibration=cal, seeds=5, confidence=0.5)
    bound = compile_model(work, HERMES, "sensitivity", budget=0.01, calibration=cal, seeds=5, confidence=0.95)
    assert point.layers[0].assign == "analog" and point.accuracy.drop_upper == pytest.approx(0.005)
    assert bound.layers[0].assign == "digital" and [lp.assign for lp in bound.layers[1:4]] == ["analog"] * 3
    # nothing lost on 5 x 1000 outcomes: the zero-event binomial bound
    assert bound.accuracy.drop_upper == pytest.approx(1 - 0.05 ** (1 / 5000)) and bound.options.confidence == 0.95
    # the same mean drop on every chip: only image sampling, se² = p (1 - p) / (N - 1) at
    # df N - 1; the score bound (1.05 points) misses the budget too, a 2 % budget is met
    monkeypatch.setattr(A, "evaluate_correct", _fake_outcomes(drops))
    even = compile_model(work, HERMES, "sensitivity", budget=0.02, calibration=cal, seeds=5, confidence=0.95)
    assert even.layers[0].assign == "analog"
    c = student_t.ppf(0.95, N_FAKE - 1) * (0.995 / (N_FAKE - 1)) ** 0.5  # t se / sqrt(p)
    assert even.accuracy.drop_upper == pytest.approx(((c + (c * c + 0.02) ** 0.5) / 2) ** 2, rel=1e-9)
    assert 0.01 < even.accuracy.drop_upper < 0.011


def test_sensitivity_on_the_ideal_chip_keeps_everything_analog():
    net, x, y = _toy()
    plan = compile_model(extract_workload_io(net, x[:4]), "ideal", "sensitivity", budget=0.0,
                         calibration=Calibration(net, x, y), seeds=1, confidence=0.5)
    assert all(lp.sensitivity in (0.0, None) for lp in plan.layers)
    assert [lp.assign for lp in plan.layers][:4] == ["analog"] * 4
    assert plan.accuracy.mean == plan.accuracy.fp == 1.0 and plan.accuracy.drop_upper == 0.0
    # a budget of 0 cannot be shown at 95 % on 2 x 64 images (nothing lost: bound 2.3 points)
    bound = compile_model(extract_workload_io(net, x[:4]), "ideal", "sensitivity", budget=0.0,
                          calibration=Calibration(net, x, y), seeds=2)
    assert all(lp.assign == "digital" for lp in bound.layers) and bound.accuracy.drop_upper == 0.0


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
