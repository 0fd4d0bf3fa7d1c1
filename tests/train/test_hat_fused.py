"""The fused C++ HAT read against the PyTorch reference read of aimc.train.hat."""
import copy
import math

import pytest
import torch
from torch import nn

import aimc
from aimc import cpp
from aimc.train import hat_fused
from aimc.train.hat import HATConfig, enable_hat

pytestmark = pytest.mark.skipif(not cpp.available(), reason="C++ kernels not available")


def _chip(rows=None, dac=True):
    """pcm-hermes without output noise (and, with dac=False, without a DAC): with weight
    noise off, the training read is then deterministic in both implementations."""
    spec = aimc.chips.load("pcm-hermes")
    upd = {"noise": spec.noise.replace(out_noise=0.0)}
    if rows:
        upd["rows"] = rows
    if not dac:
        upd["dac"] = spec.dac.replace(bits=None)
    return spec.replace(**upd)


def _run(model, x, fused: bool, monkeypatch):
    """Output and gradients of one training read (fused or reference) of a copy of model."""
    with monkeypatch.context() as m:
        if not fused:
            m.setattr(hat_fused, "usable", lambda *a: False)
        net = copy.deepcopy(model).train()
        xx = x.clone().requires_grad_(True)
        out = net(xx)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        return out.detach(), xx.grad, {n: p.grad for n, p in net.named_parameters() if p.grad is not None}


LAYERS = {
    "linear": (lambda: nn.Linear(20, 6), (5, 20)),
    "conv2d": (lambda: nn.Conv2d(3, 4, 3, padding=1), (2, 3, 6, 6)),
    "conv2d-stride-asym-pad": (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=(0, 1)), (2, 3, 7, 7)),
    "conv2d-same-even": (lambda: nn.Conv2d(2, 3, 4, padding="same"), (2, 2, 6, 6)),
    "conv1d-dilated": (lambda: nn.Conv1d(3, 4, 3, padding=2, dilation=2), (2, 3, 9)),
}
CONFIGS = {
    "default": dict(noise_scale=0.0),
    "no-drift": dict(noise_scale=0.0, expected_drift=False),
    "no-io": dict(noise_scale=0.0, quantize_io=False),
    "learned": dict(noise_scale=0.0, input_range="learned", learn_out_scales=True),
}


LAYOUTS = [(name, False) for name in LAYERS] + [(name, True) for name in LAYERS if name.startswith("conv2d")]


@pytest.mark.parametrize("layer,channels_last", LAYOUTS)
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("rows", [None, 8])
def test_fused_equals_reference_without_noise(layer, channels_last, config, rows, monkeypatch):
    """Noise off, the fused read is the reference read: outputs to float rounding, every
    gradient (input, weight, bias, gains, input range) to float rounding; 1 or 2+ tiles,
    NCHW or channels-last input. The DAC is off for dynamic-range convolutions, whose
    DAC rounding both model as (random) additive noise."""
    make, shape = LAYERS[layer]
    torch.manual_seed(1)
    dac = CONFIGS[config].get("input_range") == "learned" or layer == "linear"
    model = aimc.convert(make(), _chip(rows, dac=dac))
    enable_hat(model, HATConfig(**CONFIGS[config]), seed=0)
    x = torch.randn(*shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    out_f, gx_f, g_f = _run(model, x, True, monkeypatch)
    out_r, gx_r, g_r = _run(model, x, False, monkeypatch)
    assert out_f.shape == out_r.shape
    torch.testing.assert_close(out_f, out_r, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gx_f, gx_r, rtol=1e-5, atol=1e-6)
    assert g_f.keys() == g_r.keys()
    for name in g_r:
        torch.testing.assert_close(g_f[name], g_r[name], rtol=1e-4, atol=1e-6, msg=name)


def test_fused_conv_keeps_channels_last():
    """A channels-last input gives a channels-last output (as oneDNN's plain conv does)."""
    model = aimc.convert(nn.Conv2d(4, 8, 3, padding=1), "pcm-hermes")
    enable_hat(model, HATConfig(), seed=0)
    x = torch.randn(2, 4, 5, 5).contiguous(memory_format=torch.channels_last)
    y = model.train()(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y.contiguous(), y)


def _weights(w, mean_tab, sd_tab, noise_scale, seed):
    return cpp.load().hat_weights(w, 1, w.shape[1], mean_tab, sd_tab, noise_scale, 1.0, seed)


def test_fused_weight_noise_is_the_device_std_around_the_drifted_mean():
    """Over many seeds, (noisy - noiseless) / (noise_scale * sd(|w|)) is N(0, 1): mean and
    variance within 5 sampling standard errors; different seeds differ, equal seeds agree."""
    torch.manual_seed(0)
    layer = aimc.convert(nn.Linear(64, 32), "pcm-hermes")
    enable_hat(layer, HATConfig(t_eval_max_s=None, t_eval_s=86400.0), seed=0)
    hf = layer.train_forward
    sd_tab, mean_tab = hf._tables(layer.chip.device, 86400.0, layer.weight)
    w = layer.weight.detach()
    clean, scale, _ = _weights(w, mean_tab, sd_tab, 0.0, 0)
    a = (w / scale[0][:, None]).abs().clamp(max=1)
    sd = 2.0 * sd_tab[(a * (sd_tab.numel() - 1)).round().long()]
    z = torch.stack([(_weights(w, mean_tab, sd_tab, 2.0, s)[0][0] - clean[0]) / sd for s in range(200)])
    n = z.numel()
    assert abs(float(z.mean())) < 5 / math.sqrt(n)
    assert abs(float(z.var()) - 1) < 5 * math.sqrt(2 / n)
    assert torch.equal(_weights(w, mean_tab, sd_tab, 2.0, 7)[0], _weights(w, mean_tab, sd_tab, 2.0, 7)[0])


def test_fused_noise_variance_matches_reference(monkeypatch):
    """The full default read (device noise x 2, expected drift, DAC-noise equivalent, output
    noise, ADC): the per-output variance over passes agrees with the reference read's within
    sampling error (mean ratio over outputs within 10 %)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.Flatten(), nn.Linear(6 * 16, 5))
    model = aimc.convert(model, "pcm-hermes")
    x = torch.randn(4, 2, 4, 4)

    def var(fused):
        enable_hat(model, HATConfig(t_eval_max_s=None, t_eval_s=86400.0), seed=0)
        with monkeypatch.context() as m, torch.no_grad():
            if not fused:
                m.setattr(hat_fused, "usable", lambda *a: False)
            ys = torch.stack([model.train()(x) for _ in range(300)])
        return ys.var(dim=0), ys.mean(dim=0)

    v_f, m_f = var(True)
    v_r, m_r = var(False)
    ratio = float((v_f / v_r).mean())
    assert 0.9 < ratio < 1.1
    assert float((m_f - m_r).abs().mean()) < 0.2 * float(v_r.sqrt().mean())  # same mean within noise


def test_fused_same_seed_same_training_read():
    torch.manual_seed(0)
    model = aimc.convert(nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 16, 3)), "pcm-hermes")
    x = torch.randn(3, 1, 6, 6)
    outs = []
    for seed in (5, 5, 6):
        enable_hat(model, HATConfig(), seed=seed)
        outs.append(model.train()(x))
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])


def test_fused_read_does_not_depend_on_the_thread_count():
    torch.manual_seed(0)
    model = aimc.convert(nn.Conv2d(3, 8, 3), "pcm-hermes")
    x = torch.randn(16, 3, 10, 10)
    old, outs = torch.get_num_threads(), []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            enable_hat(model, HATConfig(), seed=1)
            outs.append(model.train()(x))
    finally:
        torch.set_num_threads(old)
    assert torch.equal(outs[0], outs[1])
