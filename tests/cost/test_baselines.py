"""Baselines: datasheet golden numbers, exact roofline limits, energy accounting, the
digital IMC macro's published figures, and errors that name the file and field."""
from __future__ import annotations

import math

import numpy as np
import pytest

from aimc.config import ConfigError
from aimc.cost.baselines import DIMCSpec, VonNeumannSpec, load_baseline, names, price_baseline, roofline_arrays
from aimc.cost.baselines.technology import HOROWITZ_45NM_PJ, node_energy_scale
from aimc.graph.builders import LayerWorkIO, mlp_workload, transformer_block_workload
from aimc.cost.layer_cost import BREAKDOWN
from aimc.graph.workload import LayerWork, mvm_workload
@pytest.fixture(scope="module")
def a100() -> VonNeumannSpec:
    return load_baseline("gpu-a100")


def test_presets_listed_and_load():
    assert {"gpu-a100", "gpu-h100", "cpu-xeon", "dimc-22nm"} <= set(names())
    for n in names():
        spec = load_baseline(n)
        assert spec.name == n
        assert len(spec.sources) >= 3, f"{n}: every constant needs a source"


def test_datasheet_golden_numbers(a100):
    # NVIDIA A100 datasheet (40 GB SXM): 312 TFLOPS fp16 dense, 624 TOPS int8 dense, 1,555 GB/s, 400 W
    assert a100.peak_tops["fp16"] == 312.0 and a100.peak_tops["int8"] == 624.0
    assert a100.mem_bw_GBps == 1555.0 and a100.tdp_W == 400.0 and a100.die_area_mm2 == 826.0
    h100 = load_baseline("gpu-h100")  # H100 SXM datasheet: dense = half the sparse figures
    assert h100.peak_tops["fp16"] == 989.5 and h100.peak_tops["int8"] == 1979.0 and h100.mem_bw_GBps == 3350.0
    xeon = load_baseline("cpu-xeon")  # 8 x DDR4-3200 x 8 B; 40 cores x 2.3 GHz x 2 x 64 MAC x 2
    assert xeon.mem_bw_GBps == pytest.approx(8 * 3.2 * 8)
    assert xeon.peak_tops["int8"] == pytest.approx(40 * 2.3e9 * 2 * 64 * 2 / 1e12, rel=1e-3)
    assert a100.dram_pJ_per_bit == 3.9  # O'Connor et al. MICRO 2017, HBM2


def test_horowitz_and_scaling():
    assert HOROWITZ_45NM_PJ["mac_int8"] == pytest.approx(0.2 + 0.1)
    assert HOROWITZ_45NM_PJ["dram_per_bit_low"] == pytest.approx(1300 / 64)
    assert node_energy_scale(45, 0.9) == pytest.approx(1.0)
    s = [node_energy_scale(n, 0.8) for n in (45, 32, 20, 14, 7)]
    assert all(a > b for a, b in zip(s, s[1:])), "energy per op falls with the node"
    assert node_energy_scale(7, 0.7) == pytest.approx(0.0566, abs=5e-4)
    with pytest.raises(ValueError, match="node_nm"):
        node_energy_scale(3, 0.7)


@pytest.mark.parametrize("batch", [1, 3, 64, 401, 4096])
@pytest.mark.parametrize("shape", [(4096, 4096), (784, 10), (1, 1)])
def test_roofline_is_exact(a100, batch, shape):
    k, n = shape
    c = price_baseline(mvm_workload(k, n), a100, batch)[0]
    w_bytes, a_bytes, ops = k * n, k + n, 2 * k * n          # int8: one byte per value
    t_mem = (w_bytes + batch * a_bytes) / 1555e9 * 1e9
    t_cmp = batch * ops / 624e12 * 1e9
    assert c.latency_ns * batch == pytest.approx(max(t_mem, t_cmp), rel=1e-12)
    assert c.utilisation == pytest.approx(t_cmp / max(t_mem, t_cmp), rel=1e-12)


def test_batch_one_mvm_is_memory_bound_and_large_batch_compute_bound(a100):
    r1 = roofline_arrays(mvm_workload(4096, 4096), a100, 1)
    assert r1["t_memory_ns"][0] > 100 * r1["t_compute_ns"][0]
    assert r1["intensity"][0] < 2.0 < a100.ridge_ops_per_byte
    big = price_baseline(mvm_workload(4096, 4096), a100, 4096)[0]
    assert big.latency_ns == pytest.approx(2 * 4096 * 4096 / 624e12 * 1e9, rel=1e-12)  # ops / peak
    assert big.utilisation == 1.0


def test_energy_accounting(a100):
    work = mlp_workload([1024, 2048, 10], batch_tokens=4)
    for batch in (1, 16):
        for c, w in zip(price_baseline(work, a100, batch), work):
            assert set(c.energy_pJ) == set(BREAKDOWN)
            assert c.energy_pJ["digital"] == pytest.approx(w.macs * a100.mac_pJ)
            assert c.energy_pJ["data_movement"] == pytest.approx(c.detail_pJ["weights"] + c.detail_pJ["activations"])
            assert c.energy_pJ["static"] == pytest.approx(a100.static_power_W * c.latency_ns * 1e3)
            per_bit = a100.dram_pJ_per_bit + 2 * a100.sram_pJ_per_bit
            assert c.detail_pJ["weights"] == pytest.approx(w.n_weights * 8 / batch * per_bit)
    costs = price_baseline(work, a100, 1)
    assert sum(c.area_mm2 for c in costs) == pytest.approx(a100.die_area_mm2)


def test_weight_energy_amortised_over_batch(a100):
    e = [price_baseline(mvm_workload(2048, 2048), a100, b)[0].detail_pJ["weights"] for b in (1, 2, 8, 64)]
    assert np.allclose(np.array(e) * np.array([1, 2, 8, 64]), e[0])


def test_mac_energy_bounds(a100):
    # datasheet calibration: at peak int8 throughput the dynamic power is TDP - static
    assert a100.mac_pJ * a100.peak_ops_per_s / 2 * 1e-12 == pytest.approx(a100.tdp_W - a100.static_power_W)
    # Horowitz arithmetic alone is a lower bound on it
    for n in ("gpu-a100", "gpu-h100", "cpu-xeon"):
        s = load_baseline(n)
        assert 0 < s.mac_pJ_horowitz < s.mac_pJ
    hz = a100.replace(mac_energy="horowitz")
    assert hz.mac_pJ == pytest.approx(0.3 * node_energy_scale(7, 0.7))


def test_non_stationary_operands_are_per_sample_activations(a100):
    qk = LayerWorkIO("qk", "matmul", 64, 128, 128 * 8, groups=8, x_elements=128 * 512, stationary=False)
    c1, c8 = (price_baseline([qk], a100, b)[0] for b in (1, 8))
    assert c1.detail_pJ["weights"] == 0.0
    assert c8.detail_pJ["activations"] == pytest.approx(c1.detail_pJ["activations"])  # not amortised
    d = price_baseline([qk], "dimc-22nm")[0]
    assert d.detail_pJ["weights"] > 0  # the macro is rewritten every inference


# -- digital IMC -----------------------------------------------------------------------

def test_dimc_reproduces_published_macro_figures():
    spec = load_baseline("dimc-22nm")
    assert isinstance(spec, DIMCSpec) and spec.macro_kb == 64
    ref = spec.replace(input_bits=4, weight_bits=4)  # Chih et al., ISSCC 2021: 89 TOPS/W, 16.3 TOPS/mm2
    assert ref.tops_per_w == pytest.approx(89.0, rel=1e-12)
    assert ref.tops_per_mm2 == pytest.approx(16.3, rel=1e-12)
    assert spec.tops_per_w == pytest.approx(89.0 / 4) and spec.tops_per_mm2 == pytest.approx(16.3 / 4)
    # independent of the assumed clock
    fast = spec.replace(clock_GHz=2.0)
    assert fast.tops_per_mm2 == pytest.approx(spec.tops_per_mm2) and fast.tops_per_w == spec.tops_per_w


@pytest.mark.parametrize("bits", [4, 8])
def test_dimc_priced_layer_reaches_macro_figures(bits):
    spec = load_baseline("dimc-22nm").replace(input_bits=bits, weight_bits=bits)
    w = LayerWork("full", "linear", 2 * spec.rows, 3 * spec.cols, 1000)      # 6 full macros
    c = price_baseline([w], spec)[0]
    assert c.tiles == 6 and c.utilisation == 1.0
    assert 2 * w.macs / c.energy_pJ["digital"] == pytest.approx(spec.tops_per_w)
    tops = 2 * w.macs / c.latency_ns * 1e-3
    assert tops / c.area_mm2 == pytest.approx(spec.tops_per_mm2)
    assert c.energy_pJ["static"] == 0 and c.energy_pJ["adc"] == 0  # exact digital: no ADC


def test_dimc_cost_independent_of_batch():
    work = transformer_block_workload(64, 4, 128, 8)
    a, b = (price_baseline(work, "dimc-22nm", n) for n in (1, 32))
    assert [x.total_pJ for x in a] == [x.total_pJ for x in b]


# -- errors name the file and field ----------------------------------------------------

def test_unknown_name_lists_presets():
    with pytest.raises(ConfigError, match="gpu-a100"):
        load_baseline("tpu-v9")


def _write(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    return p


def test_bad_field_named_with_file(tmp_path):
    base = (load_baseline("gpu-a100").to_dict())
    base.pop("_version")
    import yaml
    base["mem_bw_GBps"] = -1
    p = _write(tmp_path, yaml.safe_dump(base))
    with pytest.raises(ConfigError, match=r"bad\.yaml[\s\S]*mem_bw_GBps"):
        load_baseline(p)
    base["mem_bw_GBps"] = 10.0
    base["precision"] = "fp32"
    base["peak_tops"] = {"int8": 1.0}
    with pytest.raises(ConfigError, match="precision 'fp32'"):
        load_baseline(_write(tmp_path, yaml.safe_dump(base)))


def test_bad_kind_and_missing_field(tmp_path):
    with pytest.raises(ConfigError, match=r"bad\.yaml[\s\S]*'kind'"):
        load_baseline(_write(tmp_path, "name: x\nkind: fpga\n"))
    with pytest.raises(ConfigError, match=r"bad\.yaml[\s\S]*tops_per_w_ref"):
        load_baseline(_write(tmp_path, "name: x\nkind: dimc\n"))
    with pytest.raises(ConfigError, match="malformed YAML"):
        load_baseline(_write(tmp_path, "name: [x\n"))


def test_dimc_weight_bits_must_fill_columns():
    with pytest.raises(ConfigError, match="weight_bits"):
        load_baseline("dimc-22nm").replace(weight_bits=6)


def test_bad_batch(a100):
    with pytest.raises(ValueError, match="batch"):
        price_baseline(mvm_workload(4, 4), a100, 0)
    assert price_baseline([], a100) == []
    assert math.isfinite(price_baseline(mvm_workload(1, 1), "cpu-xeon")[0].total_pJ)


def test_dimc_system_wrapper_uses_the_analog_chips_components():
    """Apples to apples: wrapped in the analog chip's system components, digital IMC pays the
    same buffer/interconnect/digital formulas (components.py) on its own byte and output counts."""
    import aimc
    from aimc.cost import components as C

    spec = load_baseline("dimc-22nm")
    c = aimc.chips.load("pcm-hermes").cost
    work = mvm_workload(512, 64, 10)                    # 2 row macros x 2 column macros (8b weights: 32 cols)
    bare, wrapped = _price_dimc_pair(work, spec, c)
    assert wrapped.detail_pJ["macro"] == bare.detail_pJ["macro"] == pytest.approx(512 * 64 * 10 * spec.mac_pJ)
    n_bytes = 10 * (512 * 2 * 8 / 8 + 64 * 2 * spec.psum_bits / 8)
    assert spec.psum_bits == 8 + 8 + 8
    assert wrapped.energy_pJ["data_movement"] == pytest.approx(
        C.data_movement_energy_pJ(n_bytes, c.sram_pJ_per_byte, c.noc_pJ_per_byte_hop, c.avg_hops))
    per_out = 10 * C.digital_energy_pJ(0.0, 64, 2, 0.0, c.accum_pJ, c.scale_act_pJ, False)
    assert wrapped.energy_pJ["digital"] == pytest.approx(wrapped.detail_pJ["macro"] + per_out)
    assert wrapped.latency_ns == pytest.approx(bare.latency_ns + c.avg_hops * c.hop_latency_ns)


def _price_dimc_pair(work, spec, system):
    from aimc.cost.baselines.dimc import price_dimc

    return price_dimc(work, spec)[0], price_dimc(work, spec, system=system)[0]


def test_sram_dcim_preset_matches_the_dimc_macro():
    """The sram-dcim chip preset's cost section is the dimc-22nm macro (Chih et al., ISSCC 2021,
    89 TOPS/W at 4b x 4b -> 22.25 at 8b x 8b) at the benchmark's uniform inputs."""
    from aimc.cost import estimate

    r = estimate(mvm_workload(256, 64, 64), "sram-dcim")
    core = r.breakdown["array"] + r.breakdown["dac"] + r.breakdown["adc"]
    assert 2 * 256 * 64 * 64 / core == pytest.approx(load_baseline("dimc-22nm").tops_per_w, rel=1e-3)
    assert r.breakdown["adc"] == 0.0 and r.breakdown["dac"] == 0.0


def test_estimate_dimc_baseline_area_is_its_macros():
    import aimc

    r = aimc.cost.estimate(mvm_workload(256, 256, 64), "pcm-hermes", baseline="dimc-22nm")
    spec = load_baseline("dimc-22nm")
    assert r.baseline["area_mm2"] == pytest.approx(8 * spec.macro_area_mm2)  # 256 rows x 256 8b cols / 32
