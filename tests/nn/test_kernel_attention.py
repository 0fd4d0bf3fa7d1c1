"""Kernel attention: equals its closed form in plain PyTorch (digital and on the `ideal`
chip), approaches softmax attention as features grow, handles masks, and its frozen
projection goes on tiles through `convert(..., attention="kernel")`."""
import math

import pytest
import torch
from torch import nn

import aimc
from aimc.nn import AnalogLinear, KernelAttention, KernelAttentionConfig, use_kernel_attention
from aimc.train.hat import HAT_PRESETS, enable_hat

E, H = 16, 2


def _mha(seed=0, **kw):
    torch.manual_seed(seed)
    return nn.MultiheadAttention(E, H, batch_first=True, **kw)


def _x(B=3, L=6, seed=1):
    return torch.randn(B, L, E, generator=torch.Generator().manual_seed(seed))


def _oracle(att: KernelAttention, x: torch.Tensor, causal=False, key_keep=None) -> torch.Tensor:
    """Closed form, no factorisation or stabiliser: K_ij = (1/2m) sum_r 2 cosh(w_r.(q_i+k_j))
    exp(-(|q_i|^2+|k_j|^2)/2) for hyperbolic features; out = K V / K 1."""
    B, L, _ = x.shape
    d = att.head_dim
    W = att.feature_map.proj.weight.detach().double()  # (m, d)
    lin = lambda p: (x.double() @ p.weight.detach().double().T + p.bias.detach().double())  # noqa: E731
    q, k, v = (lin(p).view(B, L, H, d).transpose(1, 2) * (d ** -0.25 if p is not att.v_proj else 1.0)
               for p in (att.q_proj, att.k_proj, att.v_proj))
    z = q.unsqueeze(3) + k.unsqueeze(2)  # (B, H, L, S, d)
    wz = z @ W.T  # (B, H, L, S, m)
    K = torch.cosh(wz).mean(-1) * torch.exp(-0.5 * (q * q).sum(-1)[..., :, None] - 0.5 * (k * k).sum(-1)[..., None, :])
    if causal:
        K = K.masked_fill(torch.ones(L, L, dtype=torch.bool).triu(1), 0.0)
    if key_keep is not None:
        K = K * key_keep.double()[:, None, None, :]
    out = (K @ v) / K.sum(-1, keepdim=True)
    out = out.transpose(1, 2).reshape(B, L, E)
    return out @ att.out_proj.weight.detach().double().T + att.out_proj.bias.detach().double()


def test_digital_and_ideal_chip_equal_the_closed_form():
    att = KernelAttention.from_softmax(_mha(), KernelAttentionConfig(n_projections=32))
    x = _x()
    ref = _oracle(att, x).float()
    torch.testing.assert_close(att(x, x, x, need_weights=False)[0], ref, atol=2e-5, rtol=1e-4)
    analog = aimc.convert(att, "ideal")
    assert isinstance(analog.feature_map.proj, AnalogLinear) and isinstance(analog.q_proj, AnalogLinear)
    torch.testing.assert_close(analog(x, x, x, need_weights=False)[0], ref, atol=2e-5, rtol=1e-4)


def test_causal_and_padding_equal_the_closed_form():
    att = KernelAttention.from_softmax(_mha(), KernelAttentionConfig(n_projections=16)).eval()
    x = _x(B=2, L=5)
    causal = nn.Transformer.generate_square_subsequent_mask(5)
    torch.testing.assert_close(att(x, x, x, attn_mask=causal, need_weights=False)[0],
                               _oracle(att, x, causal=True).float(), atol=2e-5, rtol=1e-4)
    pad = torch.tensor([[False] * 5, [False, False, False, True, True]])
    torch.testing.assert_close(att(x, x, x, key_padding_mask=pad, need_weights=False)[0],
                               _oracle(att, x, key_keep=~pad).float(), atol=2e-5, rtol=1e-4)
    # the implied weights: rows sum to 1, padded keys get 0
    w = att(x, x, x, key_padding_mask=pad)[1]
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 5))
    assert float(w[1, :, 3:].detach().abs().max()) == 0.0


def test_approaches_softmax_attention_with_many_features():
    mha = _mha().eval()
    x = 0.5 * _x()
    with torch.no_grad():
        ref = mha(x, x, x, need_weights=False)[0]
    errs = []
    for m in (16, 4096):
        att = KernelAttention.from_softmax(mha, KernelAttentionConfig(n_projections=m, row_norm="chi")).eval()
        with torch.no_grad():
            errs.append(float((att(x, x, x, need_weights=False)[0] - ref).norm() / ref.norm()))
    assert errs[1] < 0.02 and errs[1] < errs[0] / 4, errs


def test_long_sequences_do_not_overflow():
    att = KernelAttention.from_softmax(_mha()).eval()
    x = 30.0 * _x(B=1, L=64)
    y = att(x, x, x, need_weights=False)[0]
    assert torch.isfinite(y).all()


def test_convert_switch_and_frozen_projection_under_hat():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(E, H, 32, dropout=0.0, batch_first=True, norm_first=True)
    analog = aimc.convert(layer, "pcm-hermes", attention="kernel")
    names = {n for n, _ in aimc.nn.analog_layers(analog)}
    assert "self_attn.feature_map.proj" in names and "self_attn.q_proj" in names and "linear1" in names
    proj = analog.self_attn.feature_map.proj
    assert not proj.weight.requires_grad
    w0 = proj.weight.detach().clone()
    enable_hat(analog, HAT_PRESETS["kernel-lra"], seed=0)
    opt = torch.optim.Adam([p for p in analog.parameters() if p.requires_grad], lr=1e-2)
    analog.train()(_x()).square().mean().backward()
    assert analog.self_attn.q_proj.weight.grad is not None and proj.weight.grad is None
    opt.step()
    assert torch.equal(proj.weight.detach(), w0)  # neither trained nor clipped
    aimc.program(analog, seed=0)
    assert torch.isfinite(analog.eval()(_x())).all()
    with pytest.raises(ValueError, match="attention must be"):
        aimc.convert(layer, "ideal", attention="linear")


def test_unsupported_variants_keep_softmax_with_a_warning():
    net = nn.ModuleDict({"a": _mha(), "b": nn.MultiheadAttention(E, H, add_bias_kv=True)})
    with pytest.warns(UserWarning, match=r"b \(add_bias_kv\)"):
        new = use_kernel_attention(net)
    assert isinstance(new["a"], KernelAttention) and isinstance(new["b"], nn.MultiheadAttention)
    with pytest.raises(ValueError, match="add_zero_attn"):
        KernelAttention.from_softmax(nn.MultiheadAttention(E, H, add_zero_attn=True))


def test_other_masks_refused_and_seeds_differ_per_layer():
    att = KernelAttention.from_softmax(_mha())
    x = _x()
    with pytest.raises(ValueError, match="causal"):
        att(x, x, x, attn_mask=torch.zeros(6, 6, dtype=torch.bool).fill_diagonal_(True))
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, H, 32, batch_first=True), 2, enable_nested_tensor=False)
    k = use_kernel_attention(enc, KernelAttentionConfig(seed=5))
    w = [m.feature_map.proj.weight for m in k.modules() if isinstance(m, KernelAttention)]
    assert len(w) == 2 and not torch.equal(w[0], w[1])
    assert math.isclose(float(w[0].norm(dim=1).mean()), math.sqrt(E // H), rel_tol=1e-5)
