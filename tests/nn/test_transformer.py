"""Transformer layers run on the tiles in every mode (issue 10, item 1): torch's fused
fast paths used to bypass the converted linear1/linear2 in eval() under no_grad (the
output equalled the digital one exactly) and the attention projections were never
converted."""
import pytest
import torch
from torch import nn

import aimc
from aimc.nn import AnalogLinear, AnalogMultiheadAttention

pytestmark = pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")


def _layer():
    torch.manual_seed(0)
    return nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True)


X = torch.randn(3, 5, 16, generator=torch.Generator().manual_seed(1))


def _run(m, train: bool, grad: bool, **kw):
    m.train(train)
    with torch.set_grad_enabled(grad):
        return m(X, **kw).detach()


def test_every_matrix_of_the_layer_is_on_tiles():
    a = aimc.convert(_layer(), "pcm-hermes")
    assert isinstance(a.self_attn, AnalogMultiheadAttention)
    names = {n for n, _ in aimc.nn.analog_layers(a)}
    assert names == {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
                     "linear1", "linear2"}
    assert a.self_attn.in_proj_weight is None and a.self_attn.in_proj_bias is None


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("grad", [True, False])
def test_noisy_chip_differs_from_digital_in_every_mode(train, grad):
    digital = _layer()
    a = aimc.convert(digital, "pcm-hermes")
    aimc.program(a, seed=0)
    ref = _run(digital, train, grad)
    y = _run(a, train, grad)
    err = float((y - ref).norm() / ref.norm())
    assert err > 1e-3, f"analog output equals digital (rel. error {err:.2g}): a fast path bypassed the tiles"


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("grad", [True, False])
def test_ideal_chip_equals_digital_in_every_mode(train, grad):
    digital = _layer()
    a = aimc.convert(digital, "ideal")
    torch.testing.assert_close(_run(a, train, grad), _run(digital, train, grad), atol=2e-6, rtol=1e-5)


def test_attention_filtered_out_still_no_fast_path():
    digital = _layer()
    a = aimc.convert(digital, "pcm-hermes", filter=lambda name, m: name in ("linear1", "linear2"))
    assert type(a.self_attn) is nn.MultiheadAttention and isinstance(a.linear1, AnalogLinear)
    aimc.program(a, seed=0)
    assert not torch.equal(_run(a, False, False), _run(digital, False, False))


def test_encoder_with_padding_mask_uses_the_tiles():
    torch.manual_seed(0)
    enc = nn.TransformerEncoder(_layer(), 2)
    kpm = torch.zeros(3, 5, dtype=torch.bool)
    kpm[1, 3:] = True
    ideal = aimc.convert(enc, "ideal")
    assert ideal.use_nested_tensor is False and enc.use_nested_tensor is True
    y, ref = _run(ideal, False, False, src_key_padding_mask=kpm), _run(enc, False, False, src_key_padding_mask=kpm)
    torch.testing.assert_close(y[~kpm], ref[~kpm], atol=2e-6, rtol=1e-5)  # digital pads masked tokens with 0
    noisy = aimc.convert(enc, "pcm-hermes")
    aimc.program(noisy, seed=0)
    assert not torch.allclose(_run(noisy, False, False, src_key_padding_mask=kpm)[~kpm], ref[~kpm], atol=1e-3)


@pytest.mark.parametrize("kw", [dict(batch_first=True), dict(), dict(add_bias_kv=True, add_zero_attn=True),
                                dict(kdim=6, vdim=5, bias=False)])
@pytest.mark.parametrize("need_weights", [True, False])
def test_analog_attention_equals_torch_on_the_ideal_chip(kw, need_weights):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, **kw)
    if mha.bias_k is not None:
        nn.init.normal_(mha.bias_k), nn.init.normal_(mha.bias_v)
    a = aimc.convert(mha, "ideal")
    L, S, B = 4, 6, 3
    q, k, v = torch.randn(L, B, 8), torch.randn(S, B, kw.get("kdim", 8)), torch.randn(S, B, kw.get("vdim", 8))
    if kw.get("batch_first"):
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
    kpm = torch.zeros(B, S, dtype=torch.bool)
    kpm[0, -2:] = True
    for extra in (dict(), dict(key_padding_mask=kpm, attn_mask=torch.randn(L, S) > 1,
                               average_attn_weights=False)):
        y, w = a(q, k, v, need_weights=need_weights, **extra)
        y_ref, w_ref = mha(q, k, v, need_weights=need_weights, **extra)
        torch.testing.assert_close(y, y_ref, atol=2e-6, rtol=1e-5)
        assert (w is None) == (w_ref is None)
        if w is not None:
            torch.testing.assert_close(w, w_ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(a(q[:, 0] if not kw.get("batch_first") else q[0],  # unbatched
                                 k[:, 0] if not kw.get("batch_first") else k[0],
                                 v[:, 0] if not kw.get("batch_first") else v[0])[0],
                               mha(q[:, 0] if not kw.get("batch_first") else q[0],
                                   k[:, 0] if not kw.get("batch_first") else k[0],
                                   v[:, 0] if not kw.get("batch_first") else v[0])[0], atol=2e-6, rtol=1e-5)
