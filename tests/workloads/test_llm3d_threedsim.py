"""aimc's 3D LLM simulator against IBM threedsim (github.com/IBM/3D-CiM-LLM-Inference-Simulator).

Golden numbers were produced by running threedsim itself (a clone of the repository, run
with aimc's venv: ``OMP_NUM_THREADS=1 PYTHONPATH=<threedsim>/src python SCRIPT.py``):

1. README example (17 s): ``AcceleratorConfig(tiles=100, tiers=1024, tier_shape=(512, 512),
   kv_caching=False)``; ``DecoderOnlyTransformer`` with 3 ``TransformerDecoderLayer`` of
   d_model 512, 8 heads, dim_feedforward 2048, vocab 1024, max_seq_length 12;
   ``Mapper(..., MapStrategy(GREEDY_IN_ORDER, split_ffn=True, stack_embedding=True))``;
   ``fast_trace_decoder(model, start_len=1, target_len=12, bsz=1)``;
   ``schedule_execution(graph, accelerator, copy_and_cleanup_graph=False, communication=True,
   save_memory=False)`` printed ``time_ns 45739.0, energy_nJ 269552.36``, energy
   ``{'passive': 228695.0, 'tier_linear': 24640, 'communication': 201.36, 'mha': {'dram': 33.0,
   'comp': 33.0}, 'layer_norm': 3410.0, 'digital_relu': 1980.0, 'digital_add': 10560.0,
   'multinomial': 0.0}``.
2. MoE test configuration of threedsim's ``tests/mapping_tests/test_mapping_decoder_only.py``
   (46 s): 96 tiles x 257 tiers of 512x512, 10 layers, d_model 1024, dim_feedforward 4096, 64
   experts, k = 1, vocab 50,000, start_len 1, target_len 8, ``torch.manual_seed(0)``,
   GREEDY_IN_ORDER, split_ffn, stack_embedding, no KV cache: ``time_ns 88026.0, energy_nJ
   703544.07``, energy ``{'passive': 440130.0, 'tier_linear': 154280, 'communication': 1264.07,
   'mha': {'dram': 70.0, 'comp': 70.0}, 'layer_norm': 5390.0, 'digital_relu': 2800.0,
   'digital_add': 99540.0}``, ``num_conflicts`` summed over tiles 17,496. The expert each
   token took (threedsim samples it at trace time) was read from the traced graph
   (``data/threedsim_moe_choices.json``) and is replayed here.
3. Placements: ``Mapper.map_network()`` of configuration 2 for GREEDY_IN_ORDER, GREEDY_UTIL
   and MOE_SEPARATED, every ``Linear``/``Embedding``'s ``mapping`` as (tile, tier) per block,
   hashed (sha256 of the sorted ``[name, blocks]`` JSON, aimc's matrix names).
"""
import hashlib
import json
from pathlib import Path

import pytest

from aimc.chips import load
from aimc.workloads.llm3d import Router, UnitCosts, load_model, map_model, simulate_run

README_TIME_NS, README_ENERGY_NJ = 45739, 269552.36
MOE_TIME_NS, MOE_ENERGY_NJ = 88026, 703544.07
MOE_ACTIVE_NJ = {"mvm": 154280.0, "comm": 1264.07, "layernorm": 5390.0, "relu": 2800.0, "add": 99540.0}
PLACEMENT_SHA256 = {
    "greedy_in_order": "f259843ff4a51090de1c69a65d58cb3d7bb25a28e7ed9f7b7d4590a32b3205d3",
    "greedy_util": "77f8694110c804afcb0651eb6a9319c7b561aa5317cd6f44d370f5dc142f626f",
    "moe_separated": "c30f36b2387b7d28fe5a83adf6b7d33a6a8a640f34792da67fd6b5a2785e7d72",
}


def _moe_chip():
    c = load("3d-nvm")
    return c.model_copy(update={"n_tiles": 96, "tiers": c.tiers.model_copy(update={"n_tiers": 257})})


def test_readme_example_exactly():
    cfg = load_model("threedsim-readme")
    r = simulate_run(cfg, map_model(cfg, load("3d-nvm"), pos_embedding_rows=12), UnitCosts.threedsim(),
                     prompt=1, generate=11, kv_cache=False)
    assert r.time_ns == README_TIME_NS
    assert r.energy_nJ == pytest.approx(README_ENERGY_NJ, abs=0.01)
    assert r.energy_breakdown_nJ["static"] == 228695.0 and r.energy_breakdown_nJ["mvm"] == 24640.0


def test_moe_configuration_within_5_percent():
    cfg = load_model("threedsim-moe")
    data = json.loads((Path(__file__).parent / "data" / "threedsim_moe_choices.json").read_text())
    choices = {(a, b, layer): [e] for a, b, layer, e in data["choices"]}
    r = simulate_run(cfg, map_model(cfg, _moe_chip(), pos_embedding_rows=8), UnitCosts.threedsim(),
                     prompt=1, generate=7, kv_cache=False, router=Router(64, 1, choices=choices))
    assert abs(r.time_ns / MOE_TIME_NS - 1) < 0.05
    assert abs(r.energy_nJ / MOE_ENERGY_NJ - 1) < 0.05
    for k, v in MOE_ACTIVE_NJ.items():  # the op counts are exact: active energy to the nJ
        assert r.energy_breakdown_nJ[k] == pytest.approx(v, abs=0.01), k


@pytest.mark.parametrize("strategy", sorted(PLACEMENT_SHA256))
def test_placement_is_threedsims_block_for_block(strategy):
    p = map_model(load_model("threedsim-moe"), _moe_chip(), strategy, pos_embedding_rows=8)
    canon = json.dumps(sorted((name, [[[t, r] for t, r in zip(rt, rr)] for rt, rr in zip(ti.tolist(), tr.tolist())])
                              for name, (ti, tr) in p.blocks.items()))
    assert hashlib.sha256(canon.encode()).hexdigest() == PLACEMENT_SHA256[strategy]


def test_real_attention_adds_its_priced_time_on_the_critical_path():
    # Without a KV cache every attention op is a barrier of its step, so replacing the 2 ns stub by the priced
    # op lengthens the run by exactly sum(real - 2): step with L tokens, 3 layers, 2 L^2 d MACs at 1024/ns
    # and 8 L^2 softmax elements at 51.2/ns (3d-nvm's digital section).
    cfg, chip = load_model("threedsim-readme"), load("3d-nvm")
    place = map_model(cfg, chip, pos_embedding_rows=12)
    stub = simulate_run(cfg, place, UnitCosts.threedsim(), prompt=1, generate=11, kv_cache=False)
    real = simulate_run(cfg, place, UnitCosts.threedsim(attention_chip=chip), prompt=1, generate=11, kv_cache=False)
    extra = sum(3 * (-(-2 * n * n * 512 // 1024) - (-8 * n * n * 10 // 512) - 2) for n in range(1, 12))
    assert real.time_ns - stub.time_ns == extra == 1701
