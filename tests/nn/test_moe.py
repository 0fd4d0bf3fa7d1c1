"""Mixture-of-experts conversion (issue 14, item 2): on the ideal chip the analog MoE equals
the digital one (same routing, same outputs) for the project's PyTorch MoE and for
Hugging Face Mixtral / Qwen2-MoE / Qwen3-MoE built from tiny configs; on a noisy chip the
routing comes from the exact (router='digital') or the chip's (router='analog') logits;
unsupported variants stay digital with a warning naming them."""
import warnings

import pytest
import torch
from torch import nn

import aimc
from aimc.nn import AnalogExperts, AnalogLinear, AnalogTopKRouter
from aimc.workloads.moe_lm import MoEFeedForward, TinyLM

X = torch.randn(64, 16, generator=torch.Generator().manual_seed(3))


def _exact_index(moe: MoEFeedForward, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return moe.route(x)[1]


@pytest.mark.parametrize("top_k", [1, 2])
def test_pytorch_moe_on_the_ideal_chip_equals_digital(top_k):
    moe = MoEFeedForward(16, 24, n_experts=4, top_k=top_k, seed=0).eval()
    for router in ("digital", "analog"):
        a = aimc.convert(moe, "ideal", router=router).eval()
        assert isinstance(a.gate, AnalogLinear) == (router == "analog")
        assert all(isinstance(e.fc1, AnalogLinear) and isinstance(e.fc2, AnalogLinear) for e in a.experts)
        with torch.no_grad():
            ref, out = moe(X), a(X)
        assert torch.equal(a.last_index, moe.last_index)
        assert len(torch.unique(moe.last_index)) > 1  # several experts exercised
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_tiny_lm_with_moe_on_the_ideal_chip_equals_digital():
    lm = TinyLM(vocab=30, d=16, n_layers=2, n_heads=2, hidden=16, context=12, n_experts=4, top_k=2, seed=1).eval()
    ids = torch.randint(0, 30, (3, 12), generator=torch.Generator().manual_seed(0))
    a = aimc.convert(lm, "ideal").eval()
    with torch.no_grad():
        torch.testing.assert_close(a(ids), lm(ids), rtol=1e-4, atol=1e-4)
    for b, bd in zip(a.blocks, lm.blocks):
        assert torch.equal(b.ffn.last_index, bd.ffn.last_index)


def test_noisy_chip_digital_router_routes_exactly():
    moe = MoEFeedForward(16, 24, n_experts=4, top_k=2, seed=0).eval()
    a = aimc.convert(moe, "pcm-hermes").eval()
    aimc.program(a, seed=0)
    aimc.drift(a, 86400.0)
    with torch.no_grad():
        out = a(X)
    assert isinstance(a.gate, nn.Linear) and not isinstance(a.gate, AnalogLinear)
    assert torch.equal(a.last_index, _exact_index(moe, X))  # the exact router's choice
    assert not torch.allclose(out, moe(X).detach(), atol=1e-3)  # while the experts are noisy


def test_noisy_chip_analog_router_routes_by_the_chip_logits():
    moe = MoEFeedForward(16, 24, n_experts=4, top_k=2, seed=0).eval()
    a = aimc.convert(moe, "pcm-hermes", router="analog").eval()
    aimc.program(a, seed=0)
    seen = []
    a.gate.register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    with torch.no_grad():
        a(X)
    logits = seen[0]
    assert not torch.allclose(logits, moe.gate(X).detach(), atol=1e-4)  # the router read is noisy
    assert torch.equal(a.last_index, torch.topk(torch.softmax(logits, -1), 2, dim=-1)[1])


# -- Hugging Face MoE models from tiny configs (random weights, nothing downloaded) --------------
transformers = pytest.importorskip("transformers")
_COMMON = dict(vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)


def _hf(kind: str):
    t = transformers
    if kind == "mixtral":
        cfg, cls = t.MixtralConfig(**_COMMON, intermediate_size=48, num_local_experts=4, num_experts_per_tok=2), \
            t.MixtralForCausalLM
    elif kind == "qwen2_moe":  # with a shared expert and its sigmoid gate; top-k weights not renormalised
        cfg, cls = t.Qwen2MoeConfig(**_COMMON, intermediate_size=48, moe_intermediate_size=24,
                                    shared_expert_intermediate_size=40, num_experts=4, num_experts_per_tok=2,
                                    norm_topk_prob=False), t.Qwen2MoeForCausalLM
    else:
        cfg, cls = t.Qwen3MoeConfig(**_COMMON, intermediate_size=48, moe_intermediate_size=24, num_experts=4,
                                    num_experts_per_tok=2, head_dim=8, norm_topk_prob=True), t.Qwen3MoeForCausalLM
    torch.manual_seed(0)
    return cls(cfg).eval()


def _routing(model) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    for name, m in model.named_modules():
        if name.endswith("mlp.gate"):
            m.register_forward_hook(lambda m, i, o: out.append(o[2].detach()))
    return out


@pytest.mark.parametrize("kind", ["mixtral", "qwen2_moe", "qwen3_moe"])
@pytest.mark.parametrize("router", ["digital", "analog"])
def test_hf_moe_on_the_ideal_chip_equals_digital(kind, router):
    m = _hf(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing left digital unannounced
        a = aimc.convert(m, "ideal", router=router).eval()
    experts = [x for _, x in a.named_modules() if isinstance(x, AnalogExperts)]
    assert len(experts) == 2 and all(len(e.gate_up) == 4 for e in experts)
    assert sum(isinstance(x, AnalogTopKRouter) for x in a.modules()) == (2 if router == "analog" else 0)
    assert not any(p.dim() == 3 for p in a.parameters())  # no fused digital experts left
    ids = torch.randint(0, 40, (2, 9), generator=torch.Generator().manual_seed(0))
    r_ref, r_a = _routing(m), _routing(a)
    with torch.no_grad():
        ref, out = m(ids).logits, a(ids).logits
    assert len(r_ref) == len(r_a) == 2 and all(torch.equal(x, y) for x, y in zip(r_ref, r_a))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_hf_experts_state_dict_round_trips():
    a = aimc.convert(_hf("mixtral"), "ideal")
    b = aimc.convert(_hf("mixtral"), "ideal")
    aimc.program(a, seed=2)
    b.load_state_dict(a.state_dict())
    ids = torch.randint(0, 40, (1, 5), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(a(ids).logits, b(ids).logits)


def test_unsupported_hf_variant_stays_digital_with_a_warning():
    cfg = transformers.GptOssConfig(**_COMMON, intermediate_size=24, num_local_experts=4, num_experts_per_tok=2,
                                    head_dim=8, layer_types=["full_attention"] * 2)
    torch.manual_seed(0)
    m = transformers.GptOssForCausalLM(cfg).eval()
    with pytest.warns(UserWarning, match=r"model\.layers\.0\.mlp\.experts .*MoE experts kept digital"):
        a = aimc.convert(m, "ideal")
    assert not any(isinstance(x, AnalogExperts) for x in a.modules())
    with pytest.warns(UserWarning, match=r"model\.layers\.0\.mlp\.router .*MoE router variant not supported"):
        aimc.convert(m, "ideal", router="analog")


def test_bad_router_option():
    with pytest.raises(ValueError, match="router must be"):
        aimc.convert(MoEFeedForward(8, 8, 2, 1), "ideal", router="noisy")  # type: ignore[arg-type]
