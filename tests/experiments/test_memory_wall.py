"""The memory wall: weight movement dominates a GPU at batch 1 and fades with the batch
(roofline limits checked analytically); workload builders; the comparison table."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from aimc.cost.baselines import load_baseline
from aimc.graph.builders import (LayerWorkIO, extract_workload_io, mlp_workload, transformer_block_workload,
                                weights_stored, x_elements)
from aimc.experiments.cost_compare import compare, format_table
from aimc.experiments.memory_wall import memory_wall
from aimc.report.memory_wall_plot import plot_memory_wall
from aimc.cost.layer_cost import LayerCost
BATCHES = (1, 2, 8, 32, 128, 512, 2048)


@pytest.fixture(scope="module")
def big_linear():
    return memory_wall(mlp_workload([8192, 8192]), "gpu-a100", batches=BATCHES)


def test_weights_dominate_at_batch_one(big_linear):
    r = big_linear
    assert r["weight_dynamic_share"][0] > 0.5
    assert r["weight_energy_share_incl_static"][0] > 0.9
    assert r["weight_time_share"][0] > 0.99
    assert r["memory_bound_share"][0] == 1.0


def test_weight_share_falls_with_batch(big_linear):
    for key in ("weight_energy_share", "weight_dynamic_share", "weight_energy_share_incl_static",
                "weight_time_share"):
        s = np.array(big_linear[key])
        assert np.all(np.diff(s) < 0), key
    assert big_linear["weight_energy_share"][-1] < 0.05
    assert big_linear["tops_per_w"][-1] > 10 * big_linear["tops_per_w"][0]


def test_analytic_roofline_limits(big_linear):
    spec = load_baseline("gpu-a100")
    k = n = 8192
    ops, w_b, a_b = 2 * k * n, k * n, k + n
    t = [max(b * ops / 624e12, (w_b + b * a_b) / 1555e9) * 1e9 / b for b in BATCHES]
    assert np.allclose(big_linear["latency_ns"], t, rtol=1e-12)
    # compute bound beyond the ridge: time per inference = ops / peak exactly
    assert big_linear["latency_ns"][-1] == pytest.approx(ops / 624e12 * 1e9, rel=1e-12)
    assert big_linear["memory_bound_share"][-1] == 0.0
    assert big_linear["ridge_ops_per_byte"] == pytest.approx(spec.peak_ops_per_s / 1555e9)
    assert big_linear["weight_bytes"] == k * n


def test_analog_side_has_no_weight_movement():
    work = mlp_workload([256, 256])
    fake = [LayerCost("fc0", {"array": 5.0, "adc": 3.0}, 100.0, work[0].macs)]
    r = memory_wall(work, batches=(1,), analog=fake)
    assert r["analog"]["weights_pJ"] == 0.0 and r["analog"]["energy_pJ"] == 8.0
    assert r["analog"]["breakdown"]["array"] == 5.0


def test_analog_via_estimator_beats_gpu_at_batch_one():
    pytest.importorskip("aimc.cost.estimator")
    r = memory_wall(mlp_workload([1024, 1024]), batches=(1,), analog="pcm-hermes")
    assert r["analog"]["energy_pJ"] < r["energy_pJ"][0]


def test_memory_wall_errors():
    with pytest.raises(ValueError, match="gpu or cpu"):
        memory_wall(mlp_workload([4, 4]), "dimc-22nm")
    with pytest.raises(ValueError, match="batches"):
        memory_wall(mlp_workload([4, 4]), batches=(0,))
    with pytest.raises(ValueError, match="empty"):
        memory_wall([])


def test_plot(tmp_path, big_linear):
    fig = plot_memory_wall(big_linear, title="8192 x 8192")
    fig.savefig(tmp_path / "wall.png")
    assert (tmp_path / "wall.png").stat().st_size > 1000


# -- builders ---------------------------------------------------------------------------

def test_transformer_block_workload():
    d, h, f, t = 512, 8, 2048, 128
    work = transformer_block_workload(d, h, f, t)
    assert sum(w.macs for w in work) == t * (4 * d * d + 2 * d * f) + 2 * t * t * d
    dyn = [w for w in work if not w.stationary]
    assert [w.name for w in dyn] == ["attn.qk", "attn.av"] and all(w.kind == "matmul" for w in dyn)
    assert weights_stored(dyn[0]) == t * d and weights_stored(dyn[1]) == t * d   # K and V
    with pytest.raises(ValueError, match="divisible"):
        transformer_block_workload(100, 8)
    with pytest.raises(ValueError, match="seq_len"):
        transformer_block_workload(seq_len=0)


def test_extract_workload_io_unique_inputs():
    net = nn.Sequential(nn.Conv2d(3, 8, 5, padding=2), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16 * 16, 10))
    work = extract_workload_io(net, torch.zeros(2, 3, 16, 16))
    assert work[0].x_elements == 3 * 16 * 16 < work[0].in_features * work[0].n_mvm  # im2col repeats inputs
    assert x_elements(work[1]) == 8 * 16 * 16
    assert all(isinstance(w, LayerWorkIO) and w.stationary for w in work)
    with pytest.raises(ValueError, match="x_elements"):
        LayerWorkIO("a", "linear", 1, 1, 1, x_elements=0)


# -- comparison table -------------------------------------------------------------------

def test_comparison_tradeoff():
    rows = compare(analog=None)
    by = {(r["model"], r["hardware"].split(" (")[0]): r for r in rows}
    for model in ("fashion_cnn", "transformer_block"):
        d, g = by[(model, "digital IMC")], by[(model, "GPU")]
        assert d["tops_per_w"] > 10 * g["tops_per_w"]          # IMC: no weight traffic
        assert d["weight_movement_share"] < 0.01 < g["weight_movement_share"]  # DIMC: only attention's K, V writes
        assert "exact" in d["precision"]
    assert "| fashion_cnn | GPU (gpu-a100) |" in format_table(rows)
