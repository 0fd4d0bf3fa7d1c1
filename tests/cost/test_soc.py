"""The SoC view of aimc.cost.estimate: digital layers, host ops, inter-core movement.

Exact analytic cases from the chip's digital section (aimc.cost.soc's module doc)."""
import json

import pytest

from aimc.chips import load
from aimc.chips.digital import DEFAULT_DIGITAL, HOST_OP_KINDS
from aimc.cost import BREAKDOWN, estimate
from aimc.graph.workload import LayerWork


def _fc(name="fc", k=256, n=128, m=4):
    return LayerWork(name, "linear", k, n, m)


@pytest.mark.parametrize("chip", ["pcm-hermes", "rram-1t1r", "sram-dcim"])
def test_one_layer_all_digital_is_macs_times_pJ_plus_weight_bytes(chip):
    d = load(chip).digital or DEFAULT_DIGITAL
    r = estimate([_fc()], chip, digital=["fc"])
    macs, w_bytes = 256 * 128 * 4, 256 * 128 * d.mac_bits / 8
    assert r.energy_pJ == pytest.approx(macs * d.mac_pJ + w_bytes * d.sram_pJ_per_byte, rel=1e-12)
    assert r.breakdown["host"] == pytest.approx(macs * d.mac_pJ, rel=1e-12)
    assert r.breakdown["inter_core"] == 0.0  # nothing analog: no activations cross cores
    assert r.latency_ns == pytest.approx(max(macs / d.macs_per_ns, w_bytes / d.sram_bytes_per_ns), rel=1e-12)
    assert r.tiles_used == 0 and r.layers[0].tiles == 0


def test_digital_layer_beside_analog_moves_its_activations():
    d = load("pcm-hermes").digital
    both = estimate([_fc("a"), _fc("b", k=128, n=10)], "pcm-hermes", digital=["b"])
    alone = estimate([_fc("a")], "pcm-hermes")
    moved = (128 * 4 + 10 * 4) * d.bytes_per_element  # input K*n_mvm + output N*n_mvm
    b = both.layers[1]
    assert b.energy_pJ["inter_core"] == pytest.approx(moved * d.link_pJ_per_byte, rel=1e-12)
    assert b.energy_pJ["host"] == pytest.approx(128 * 10 * 4 * d.mac_pJ, rel=1e-12)
    assert b.energy_pJ["host_memory"] == pytest.approx(128 * 10 * 2 * d.sram_pJ_per_byte, rel=1e-12)
    assert sum(b.energy_pJ[k] for k in ("array", "dac", "adc", "digital", "data_movement")) == 0.0
    assert b.latency_ns == pytest.approx(max(5120 / 16384, 2560 / 64) + moved / d.link_bytes_per_ns, rel=1e-12)
    # the analog layer is priced as without the SoC view
    assert both.layers[0].energy_pJ == alone.layers[0].energy_pJ
    assert both.tiles_used == alone.tiles_used


def test_weights_beyond_sram_come_from_dram_in_workload_order():
    d = DEFAULT_DIGITAL
    k = 512  # 512 x 512 x 2 B = 512 KiB per layer: two fit the 1 MiB SRAM, the third spills
    work = [_fc(f"l{i}", k, k, 1) for i in range(3)]
    r = estimate(work, "pcm", digital=[w.name for w in work])
    mem = [lc.energy_pJ["host_memory"] for lc in r.layers]
    b = k * k * 2
    assert mem == pytest.approx([b * d.sram_pJ_per_byte] * 2 + [b * d.dram_pJ_per_byte], rel=1e-12)
    assert r.layers[2].latency_ns == pytest.approx(b / d.dram_bytes_per_ns, rel=1e-12)


def test_no_dram_and_too_many_weights_is_a_clear_error():
    chip = load("pcm-hermes")
    chip = chip.replace(digital=chip.digital.replace(dram_pJ_per_byte=None, dram_bytes_per_ns=None,
                                                     weight_sram_bytes=1000))
    with pytest.raises(ValueError, match=r"digital layer\(s\) fc do not fit.*weight_sram_bytes"):
        estimate([_fc()], chip, digital=["fc"])


def test_host_ops_price_elements_and_link():
    d = load("pcm-hermes").digital
    ops = {"relu": 1000, "softmax": 300, "layernorm": 200}
    base = estimate([_fc()], "pcm-hermes")
    r = estimate([_fc()], "pcm-hermes", host_ops=ops)
    host = r.layers[-1]
    assert host.name == "host ops" and host.macs == 0 and r.layers[0].energy_pJ == base.layers[0].energy_pJ
    assert host.energy_pJ["host"] == pytest.approx(sum(n * d.op_pJ[k] for k, n in ops.items()), rel=1e-12)
    moved = 2 * 1500 * d.bytes_per_element
    assert host.energy_pJ["inter_core"] == pytest.approx(moved * d.link_pJ_per_byte, rel=1e-12)
    t = sum(n / d.op_elements_per_ns[k] for k, n in ops.items()) + moved / d.link_bytes_per_ns
    assert host.latency_ns == pytest.approx(t, rel=1e-12)
    assert r.latency_ns == pytest.approx(base.latency_ns + t, rel=1e-12)
    assert r.breakdown["host"] == pytest.approx(host.energy_pJ["host"], rel=1e-12)


def test_digital_units_are_one_pipeline_stage():
    d = load("pcm-hermes").digital
    work = [_fc("a", 64, 64, 1), _fc("b", 64, 64, 1), _fc("c", 64, 64, 1)]
    r = estimate(work, "pcm-hermes", digital=["b", "c"], host_ops={"gelu": 4096})
    stage = r.layers[1].latency_ns + r.layers[2].latency_ns + r.layers[3].latency_ns
    assert stage > r.layers[0].latency_ns  # the host is the bottleneck here
    assert r.throughput_inf_per_s == pytest.approx(1e9 / stage, rel=1e-12)
    assert r.tops == pytest.approx(2 * 3 * 64 * 64 / stage / 1e3, rel=1e-12)


def test_defaults_unchanged_and_new_categories_zero():
    r = estimate([_fc()], "pcm-hermes")
    assert set(r.breakdown) == set(BREAKDOWN)
    assert r.breakdown["host"] == r.breakdown["host_memory"] == r.breakdown["inter_core"] == 0.0
    assert estimate([_fc()], "pcm-hermes", digital=[], host_ops={}).to_dict() == r.to_dict()


def test_non_stationary_matrices_still_use_the_digital_mac():
    from aimc.graph.builders import transformer_block_workload
    work = transformer_block_workload(128, 4, 256, 32)
    qk = next(w for w in work if not getattr(w, "stationary", True))
    d = load("pcm-hermes").digital
    lc = next(lc for lc in estimate(work, "pcm-hermes").layers if lc.name == qk.name)
    assert lc.energy_pJ["digital"] == pytest.approx(qk.macs * d.mac_pJ, rel=1e-12)
    assert lc.latency_ns == pytest.approx(qk.macs / d.macs_per_ns, rel=1e-12)


@pytest.mark.parametrize("kw, match", [
    (dict(digital=["nope"]), r"'nope' not a layer of the workload \(its layers: fc\)"),
    (dict(digital="fc"), r"collection of layer names"),
    (dict(host_ops={"conv": 3}), r"unknown op kind 'conv'; known: add"),
    (dict(host_ops={"relu": -1}), r"host_ops\['relu'\].*>= 0"),
])
def test_bad_arguments_name_the_layer_or_op(kw, match):
    with pytest.raises(ValueError, match=match):
        estimate([_fc()], "pcm-hermes", **kw)


def test_op_missing_from_a_chip_table_is_named():
    chip = load("pcm-hermes")
    table = {k: v for k, v in chip.digital.op_pJ.items() if k != "gelu"}
    rates = {k: v for k, v in chip.digital.op_elements_per_ns.items() if k != "gelu"}
    chip = chip.replace(digital=chip.digital.replace(op_pJ=table, op_elements_per_ns=rates))
    with pytest.raises(ValueError, match=r"do not price op kind 'gelu'.*digital\.op_pJ\.gelu"):
        estimate([_fc()], chip, host_ops={"gelu": 10})


def test_report_json_has_the_soc_categories():
    d = json.loads(json.dumps(estimate([_fc()], "pcm-hermes", host_ops={k: 1 for k in HOST_OP_KINDS}).to_dict()))
    assert d["layers"][-1]["name"] == "host ops" and d["breakdown"]["host"] > 0


def test_every_compute_op_of_the_op_graph_is_priced():
    """The op graph's compute-op kinds (``Graph.host_ops()`` keys) are all digital op kinds."""
    from aimc.graph.ir import COMPUTE_OPS

    kinds = set(COMPUTE_OPS) | {"scale"}  # a matmul's folded constant factor
    assert kinds <= set(HOST_OP_KINDS), sorted(kinds - set(HOST_OP_KINDS))
    r = estimate([_fc()], "pcm-hermes", host_ops=dict.fromkeys(kinds, 10))
    assert r.layers[-1].energy_pJ["host"] > 0
