"""The fused read's one-call IR-drop correction (aimc.cpp.hat_irdrop) against the PyTorch
route it replaces: effective_weights at the noise-free weights, minus those weights."""
import copy

import pytest
import torch
from torch import nn

import aimc
from aimc import cpp
from aimc.tiles import effective_weights
from aimc.train import hat_fused
from aimc.train.hat import HATConfig, enable_hat

pytestmark = pytest.mark.skipif(not cpp.available(), reason="C++ kernels not available")

# (layer, rows, cols, r_wire_ohm, g_min_uS): one tile; several tiles along the input (last
# one partly empty); several along the output (last one partly empty); a conductance floor.
CASES = {
    "one-tile": (lambda: nn.Linear(20, 6), 32, 32, 2.0, None),
    "conv-one-tile": (lambda: nn.Conv2d(3, 5, 3, padding=1), 32, 32, 2.0, None),
    "tiles-in": (lambda: nn.Linear(70, 6), 32, 32, 2.0, None),
    "tiles-out": (lambda: nn.Linear(20, 40), 32, 16, 2.0, None),
    "tiles-both-g-min": (lambda: nn.Linear(70, 40), 32, 16, 2.0, 1.5),
}


def _chip(rows, cols, r_ohm, g_min):
    spec = aimc.chips.load("pcm-hermes")
    upd = {"rows": rows, "cols": cols, "ir_drop": spec.ir_drop.replace(mode="first_order", r_wire_ohm=r_ohm)}
    if g_min is not None:
        upd["device"] = spec.device.replace(g_min_uS=g_min)
    return spec.replace(**upd)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("drift", [False, True])
def test_delta_equals_effective_weights_route(case, drift):
    make, rows, cols, r_ohm, g_min = CASES[case]
    torch.manual_seed(0)
    layer = aimc.convert(make(), _chip(rows, cols, r_ohm, g_min))
    hat = HATConfig(noise_scale=0.0, expected_drift=drift, t_eval_s=3600.0)
    enable_hat(layer, hat, seed=0)
    st = hat_fused.Static.of(layer, hat, conv=isinstance(layer, nn.Conv2d))
    mean_tab = None
    if drift:
        _, mean_tab = layer.train_forward._tables(layer.chip.device, 3600.0, layer.weight)
        assert mean_tab is not None
    fast = hat_fused.ir_drop_delta(layer, st, mean_tab)
    with torch.no_grad():
        wc = hat_fused.clean_weights(layer, st, mean_tab)  # (T, out, R)
        ref = effective_weights(wc.transpose(1, 2), layer.layout, layer.chip).transpose(1, 2) - wc
    n_out, n_in = layer.analog_weight().shape
    ref = ref.transpose(0, 1).reshape(n_out, -1)[:, :n_in]
    assert fast.shape == (n_out, n_in)
    assert ref.abs().max() > 1e-3  # the correction is not negligible here
    # float32 rounding of weights ~1 and of conductance sums (the reference rounds each
    # cumsum to float32; the kernel keeps double): a few ulp of 1
    torch.testing.assert_close(fast, ref, rtol=0, atol=2e-6)


@pytest.mark.parametrize("make,shape", [(lambda: nn.Linear(70, 40), (4, 70)),
                                        (lambda: nn.Conv2d(3, 20, 3, padding=1), (2, 3, 5, 5))])
def test_fused_step_equals_the_reference_route(make, shape, monkeypatch):
    """One fused training step with the one-call correction against the same step with the
    PyTorch route (effective_weights): equal outputs, and equal gradients (the correction is
    a constant of the step, gradients straight through it in both)."""
    chip = _chip(32, 16, 2.0, None)
    chip = chip.replace(noise=chip.noise.replace(out_noise=0.0))
    torch.manual_seed(1)
    base = aimc.convert(make(), chip)
    enable_hat(base, HATConfig(noise_scale=0.0), seed=0)
    x = torch.randn(*shape)

    def run(fast: bool):
        net = copy.deepcopy(base).train()  # a fresh HATForward: Static (and its ir) rebuilt
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(hat_fused, "ir_drop_fast", lambda chip: False)
            out = net(x)
        assert net.train_forward._static_cache and all(bool(st.ir) == fast for st in net.train_forward._static_cache.values())
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        return out.detach(), {n: p.grad for n, p in net.named_parameters() if p.grad is not None}

    out_f, g_f = run(True)
    out_r, g_r = run(False)
    torch.testing.assert_close(out_f, out_r, rtol=1e-5, atol=1e-5)
    assert g_f.keys() == g_r.keys() and "weight" in g_f
    for name in g_f:
        torch.testing.assert_close(g_f[name], g_r[name], rtol=1e-5, atol=1e-6)
