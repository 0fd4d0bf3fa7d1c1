"""aimc.cost.estimate: data dependence, mapping, reprogramming, errors, baselines, speed."""
import dataclasses
import time

import pytest
import torch

import aimc
from aimc.config import ConfigError
from aimc.cost import BREAKDOWN, estimate, mvm_workload
from aimc.chips.cost_params import CostConfig
from aimc.graph.workload import LayerWork, extract_workload
def _layer(**kw):
    base = dict(name="fc", kind="linear", in_features=512, out_features=256, n_mvm=10,
                x_mean_sq=1 / 3, x_mean_abs=0.5, w_mean_abs=0.5)
    base.update(kw)
    return LayerWork(**base)


def test_energy_is_data_dependent():
    dense = estimate([_layer()], "pcm-hermes").breakdown
    sparse = estimate([_layer(x_mean_sq=0.05, x_mean_abs=0.1)], "pcm-hermes").breakdown
    small_w = estimate([_layer(w_mean_abs=0.1)], "pcm-hermes").breakdown
    assert sparse["array"] == pytest.approx(dense["array"] * 0.2)  # PWM: ~ mean |x|
    assert sparse["dac"] < dense["dac"]
    assert sparse["adc"] == dense["adc"]  # one conversion per column whatever the data
    assert small_w["array"] < dense["array"]


def test_data_dependence_from_a_model():
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    x = torch.rand(16, 64)
    sparse_x = x * (torch.rand(16, 64) < 0.1)
    e_dense = estimate(net, "pcm-hermes", inputs=x).layers[0].energy_pJ["array"]
    e_sparse = estimate(net, "pcm-hermes", inputs=sparse_x).layers[0].energy_pJ["array"]
    assert e_sparse < 0.5 * e_dense


def test_w_mean_abs_measured():
    lin = torch.nn.Linear(4, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]))
    w = extract_workload(lin, torch.ones(1, 4))[0]
    assert w.w_mean_abs == pytest.approx((0.25 + 1.0) / 2)


def test_tiling_replication_and_phases():
    r = estimate(mvm_workload(600, 300, 1), "pcm-hermes")
    assert r.layers[0].tiles == 3 * 2 and r.fits
    assert r.utilisation == pytest.approx(600 * 300 / (6 * 256 * 256))
    one = estimate(mvm_workload(256, 256, 64), "pcm-hermes")
    chip = aimc.chips.load("pcm-hermes")
    four = estimate(mvm_workload(256, 256, 64), chip.replace(cost=chip.cost.replace(phases=4)))
    assert four.tops == pytest.approx(one.tops / 4, rel=0.01)
    assert four.breakdown["adc"] == pytest.approx(4 * one.breakdown["adc"])


def test_model_that_does_not_fit_is_reprogrammed():
    chip = aimc.chips.load("pcm-hermes").replace(n_tiles=2)
    r = estimate(mvm_workload(1024, 256, 1), chip)
    assert not r.fits and r.tiles_used == 4
    assert r.layers[0].detail_pJ["programming"] > 0
    assert r.breakdown["array"] > r.programming_energy_pJ > 0
    assert r.latency_ns > 10 * 130


def test_non_stationary_matrices_run_digitally():
    from aimc.graph.builders import transformer_block_workload

    r = estimate(transformer_block_workload(d_model=64, n_heads=4, d_ff=256, seq_len=16), "pcm-hermes")
    qk = next(lc for lc in r.layers if lc.name == "attn.qk")
    assert qk.tiles == 0 and qk.energy_pJ["adc"] == 0 and qk.energy_pJ["digital"] > 0


def test_report_dict_and_table():
    r = estimate(mvm_workload(256, 256, 8), "pcm-hermes")
    d = r.to_dict()
    for key in ("energy_pJ", "latency_ns", "tops", "tops_per_w", "tops_per_mm2", "area_mm2", "breakdown", "layers"):
        assert key in d
    assert set(d["breakdown"]) == set(BREAKDOWN)
    assert sum(row["energy_pJ"] for row in r.table()) == pytest.approx(r.energy_pJ)


def test_every_preset_can_be_priced():
    for name in aimc.chips.names():
        r = estimate(mvm_workload(256, 256, 4), name)
        assert r.energy_pJ > 0 and r.tops > 0, name


def test_errors_name_the_field():
    with pytest.raises(ValueError, match="x_mean_abs"):
        estimate([_layer(x_mean_abs=2.0)], "pcm-hermes")
    with pytest.raises(ValueError, match="inputs"):
        estimate(torch.nn.Linear(2, 2), "pcm-hermes")
    with pytest.raises(ConfigError, match="cost.adc_fom_fJ"):
        aimc.chips.ChipSpec.from_dict({"cost": {"adc_fom_fJ": -1}})


def test_cost_section_round_trips():
    chip = aimc.chips.load("isaac")
    assert aimc.chips.ChipSpec.from_dict(chip.to_dict()) == chip
    assert chip.cost.sources and aimc.chips.load("pcm-hermes").cost.sources
    assert CostConfig().replace(phases=4).phases == 4


def test_baseline_attached():
    pytest.importorskip("aimc.cost.baselines")
    r = estimate(mvm_workload(256, 256, 8), "pcm-hermes", baseline="gpu-a100")
    assert r.baseline["energy_pJ"] > 0 and set(r.baseline["breakdown"]) == set(BREAKDOWN)
    with pytest.raises((ValueError, KeyError)):
        estimate(mvm_workload(256, 256, 8), "pcm-hermes", baseline="no-such-gpu")


def test_100M_parameter_model_prices_in_well_under_a_second():
    """100 layers of 1000x1000 (100 M weights): the estimate is vectorised over layers."""
    work = [dataclasses.replace(_layer(name=f"fc{i}", in_features=1000, out_features=1000, n_mvm=128))
            for i in range(100)]
    t0 = time.perf_counter()
    r = estimate(work, "pcm-hermes")
    elapsed = time.perf_counter() - t0
    assert sum(w.n_weights for w in work) == 100_000_000
    assert not r.fits and r.energy_pJ > 0
    assert elapsed < 5.0, elapsed  # measured ~ 5 ms; generous bound for busy CI machines


def test_cli_workload_and_comparison_table_price_the_gpu_alike():
    """A model's baseline is priced on unique input activations (not im2col copies), the
    same way `python -m aimc.experiments.cost_compare` does."""
    from aimc.cost import estimate
    from aimc.workloads.catalog import load_workload

    rep = estimate(load_workload("fashion-cnn", "pcm-hermes"), "pcm-hermes", baseline="gpu-a100")
    assert all(getattr(w, "x_elements", None) for w in load_workload("fashion-cnn", "pcm-hermes"))
    assert rep.baseline["energy_pJ"] > 0


def test_workload_counts_a_module_once_however_often_it_is_called():
    """A tied module (or a recurrent step) holds one set of tiles; its calls add MVMs."""
    import aimc
    lin = torch.nn.Linear(4, 4)
    work = extract_workload(torch.nn.Sequential(lin, torch.nn.ReLU(), lin), torch.randn(3, 4))
    assert [(w.name, w.n_mvm) for w in work] == [("0", 2)]
    lstm = torch.nn.LSTM(6, 8, num_layers=2, bidirectional=True, proj_size=3, batch_first=True)
    x = torch.randn(2, 7, 6)
    digital = extract_workload(lstm, x)
    analog = extract_workload(aimc.convert(lstm, "ideal"), x)  # the analog LSTM's hh is called per step
    assert [(w.in_features, w.out_features, w.n_mvm) for w in analog] == [
        (w.in_features, w.out_features, w.n_mvm) for w in digital]
    assert sum(w.macs for w in digital) == 7 * (4 * 8 * (6 + 3) + 8 * 3 + 4 * 8 * (6 + 3) + 8 * 3
                                                + 2 * (4 * 8 * (6 + 3) + 8 * 3))
