"""Hardware-aware training: STE estimator, parity with the chip read, noise statistics."""
import math

import pytest
import torch
from torch import nn

import aimc
from aimc.chips import IRDropConfig, NoiseConfig
from aimc.physics.devices import DEVICES
from aimc.train.hat import HATConfig, device_weight_std, enable_hat, ste_round


def test_ste_round_gradient_is_identity_and_clamp_blocks_outside():
    x = torch.tensor([-2.0, -0.3, 0.26, 0.9, 1.7], requires_grad=True)
    y = ste_round(x.clamp(-1, 1) * 3) / 3
    assert y.tolist() == pytest.approx([-1.0, -1 / 3, 1 / 3, 1.0, 1.0])
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]  # clipped straight-through estimator


def _quiet_hermes():
    dev = DEVICES.get("pcm-hermes")(prog_noise_scale=0.0, drift_scale=0.0, read_noise_scale=0.0)
    return aimc.chips.load("pcm-hermes").replace(device=dev, noise=NoiseConfig(read_noise=False, out_noise=0.0),
                                                 ir_drop=IRDropConfig(mode="none"))


def test_hat_read_equals_chip_read_without_noise():
    """Noise off: the differentiable training read is the chip's DAC/tiles/ADC read."""
    torch.manual_seed(0)
    a = aimc.convert(nn.Linear(600, 40), _quiet_hermes())
    enable_hat(a, HATConfig(noise_scale=0.0), seed=0)
    x = torch.randn(64, 600)
    with torch.no_grad():
        y_chip = a.eval()(x)
        y_hat = a.train()(x)
    lsb = a.chip.adc.bound / 127 * a.weight.abs().amax() * x.abs().amax()
    assert (y_hat - y_chip).abs().max() <= 1e-4 * y_chip.abs().max() + 3 * lsb  # rare rounding-boundary flips
    assert (y_hat - y_chip).abs().mean() <= 1e-3 * y_chip.abs().mean()


def test_hat_gradients_flow_to_weights_and_bias():
    a = aimc.convert(nn.Sequential(nn.Linear(20, 8), nn.ReLU(), nn.Linear(8, 3)), "pcm-hermes")
    enable_hat(a, HATConfig(), seed=1)
    a.train()(torch.randn(16, 20)).pow(2).mean().backward()
    for name, p in a.named_parameters():
        if name.endswith(("out_gain", "input_range")):  # frozen unless the config learns them
            assert not p.requires_grad and p.grad is None
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


@pytest.mark.parametrize("wn", [0.2, 0.7])
def test_device_weight_std_matches_programmed_drifted_read_spread(wn):
    """Monte Carlo on 20,000 device pairs: program, drift, GDC-normalise, read once."""
    dev = DEVICES.get("pcm-hermes")()
    t = 86_400.0
    n = 20_000
    g = torch.Generator().manual_seed(4)
    dg = dev.g_max_uS - dev.g_min_uS
    target = torch.tensor([wn * dg, 0.0], dtype=torch.float64).repeat(n, 1)  # G+ holds the weight, G- is 0
    st = dev.program(target, g)
    gt = dev.at_time(st, t)
    mean_factor = (gt / st.g_uS.clamp(min=1e-9))[:, 0].mean()  # GDC removes the mean drift
    read = gt + dev.read_noise_std_uS(st, t, gt) * torch.randn(gt.shape, generator=g, dtype=torch.float64)
    w = (read[:, 0] - read[:, 1]) / mean_factor / dg
    expected = float(device_weight_std(torch.tensor([wn], dtype=torch.float64), dev, t))
    got = float(w.std())
    assert got == pytest.approx(expected, rel=0.1)  # linearised drift spread: within 10 %


def test_enable_hat_needs_analog_layers():
    with pytest.raises(ValueError, match="no analog layers"):
        enable_hat(nn.Linear(3, 3), HATConfig())
    with pytest.raises(aimc.config.ConfigError, match="noise_scale"):
        HATConfig.from_dict({"noise_scale": -1})


@pytest.mark.slow
def test_hat_beats_plain_training_after_a_year_on_digits():
    from aimc.workloads.data import load_digits
    from aimc.workloads.models import digits_cnn
    from aimc.train.digital import accuracy, train_digital
    xtr, ytr, xte, yte = load_digits(seed=0)
    fp = train_digital(digits_cnn(seed=0), xtr, ytr, epochs=30, lr=3e-3, seed=0)
    hat = aimc.convert(fp, "pcm-hermes")
    enable_hat(hat, HATConfig(noise_scale=2.0, t_eval_s=3.15e7, t_eval_max_s=None), seed=0)
    train_digital(hat, xtr, ytr, epochs=15, lr=1e-3, seed=1)
    plain = aimc.convert(fp, "pcm-hermes")

    def year(m):
        accs = []
        for s in range(10):
            aimc.program(m, seed=s)
            aimc.drift(m, 3.15e7)
            aimc.compensate(m)
            accs.append(accuracy(m, xte, yte))
        return sum(accs) / len(accs)

    assert year(hat) > year(plain) + 0.005  # measured: 97.81 % vs 96.03 % (with expected drift; 97.06 without)


# -- learned input ranges, output scales, clipping, AFM preset --------------------------------

def _one_layer(w: torch.Tensor, cfg: HATConfig):
    layer = aimc.convert(nn.Linear(w.shape[1], w.shape[0], bias=False), _quiet_hermes())
    with torch.no_grad():
        layer.weight.copy_(w)
    enable_hat(layer, cfg, seed=0)
    return layer.train()


def test_learned_input_range_gradient_is_the_clipped_ste():
    """y = clamp(x, -r, r) @ W.T exactly (no quantisation, no noise), so
    dL/dr = sum over clipped inputs of sign(x) * (dL/dy @ W)."""
    w = torch.tensor([[0.5, -1.0, 2.0]])
    cfg = HATConfig(noise_scale=0.0, quantize_io=False, input_range="learned", input_range_decay=0.0)
    layer = _one_layer(w, cfg)
    with torch.no_grad():
        layer.input_range.fill_(1.0)
    x = torch.tensor([[0.3, -2.0, 1.5], [-1.2, 0.1, 0.2]])
    y = layer(x)
    assert torch.allclose(y, x.clamp(-1, 1) @ w.T, atol=1e-6)
    y.sum().backward()
    clipped = (x.abs() > 1.0).float() * torch.sign(x)
    assert float(layer.input_range.grad) == pytest.approx(float((clipped * w).sum()), abs=1e-6)


def test_input_range_decay_adds_decay_times_r_when_inputs_fit():
    cfg = HATConfig(noise_scale=0.0, quantize_io=False, input_range="learned", input_range_decay=0.01)
    layer = _one_layer(torch.tensor([[1.0, 1.0]]), cfg)
    with torch.no_grad():
        layer.input_range.fill_(4.0)
    layer(torch.tensor([[0.5, -0.25]])).sum().backward()  # all inside: only the decay term
    assert float(layer.input_range.grad) == pytest.approx(0.01 * 4.0, abs=1e-7)


def test_learned_input_range_starts_from_first_batch_and_the_chip_uses_it():
    cfg = HATConfig(noise_scale=0.0, input_range="learned")
    layer = _one_layer(torch.tensor([[1.0, -0.5], [0.25, 1.0]]), cfg)
    layer(torch.tensor([[3.0, -1.0]]))
    assert float(layer.input_range.detach()) == 3.0 and layer.input_range.requires_grad
    layer.input_range.data.fill_(1.0)
    layer.eval()
    x = torch.tensor([[2.0, -0.5]])
    with torch.no_grad():  # static range 1: the 2.0 clips on the chip as in training
        assert torch.allclose(layer(x), layer.train()(x), atol=2 * layer.chip.adc.bound / 127)
        assert torch.allclose(layer.eval()(x), x.clamp(-1, 1) @ layer.weight.T, atol=0.05)


def test_learned_out_scales_get_the_output_gradient():
    cfg = HATConfig(noise_scale=0.0, quantize_io=False, learn_out_scales=True)
    w = torch.tensor([[1.0, 2.0], [-0.5, 0.25]])
    layer = _one_layer(w, cfg)
    x = torch.tensor([[1.0, -1.0], [0.5, 0.5]])
    y = layer(x)
    (y * torch.tensor([1.0, 3.0])).sum().backward()
    raw = x @ w.T
    assert torch.allclose(layer.out_gain.grad, (raw * torch.tensor([1.0, 3.0])).sum(0), atol=1e-5)


def test_clip_sigma_clips_stored_weights_per_channel():
    torch.manual_seed(0)
    w = torch.randn(4, 300)
    w[0, 0] = 40.0
    lim = 2.5 * w.std(dim=1, keepdim=True)  # each channel's std before clipping
    layer = _one_layer(w, HATConfig(noise_scale=0.0, clip_sigma=2.5))
    layer(torch.randn(2, 300))
    stored = layer.weight.detach()
    assert torch.equal(stored, torch.maximum(torch.minimum(w, lim), -lim))
    assert float(stored[0, 0]) == pytest.approx(float(lim[0]))


def test_gaussian_channel_noise_has_std_of_scale_times_channel_absmax():
    """AFM's modifier: y = x (w + s * max|w_channel| * z); 4,000 draws, x = 1."""
    w = torch.tensor([[2.0, 0.5], [0.2, -0.1]])  # channel abs-max 2.0 and 0.2
    layer = _one_layer(w, HATConfig(weight_noise="gaussian_channel", noise_scale=0.03, quantize_io=False))
    x = torch.tensor([[1.0, 0.0]]).repeat(4000, 1)
    with torch.no_grad():
        ys = torch.stack([layer(x[:1]) for _ in range(4000)])[:, 0]  # one weight draw per pass
    sd = ys.std(dim=0)
    rel = 1 / math.sqrt(2 * 3999)  # sampling error of a std
    assert float(sd[0]) == pytest.approx(0.03 * 2.0, rel=5 * rel)
    assert float(sd[1]) == pytest.approx(0.03 * 0.2, rel=5 * rel)


def test_afm_preset_matches_ibm_settings():
    from aimc.train.hat import HAT_PRESETS

    afm = HAT_PRESETS["afm"]
    assert (afm.weight_noise, afm.noise_scale, afm.clip_sigma, afm.input_range) == \
        ("gaussian_channel", 0.03, 2.5, "learned")
    assert (afm.input_range_decay, afm.input_min_fraction) == (0.01, 0.95)
    net = aimc.convert(nn.Linear(4, 2), "pcm-hermes")
    enable_hat(net, "afm", seed=0)
    assert net.input_range.requires_grad
    with pytest.raises(ValueError, match="unknown HAT preset 'bogus'"):
        enable_hat(net, "bogus")
    with pytest.raises(aimc.config.ConfigError, match="weight_noise"):
        HATConfig.from_dict({"weight_noise": "uniform"})


def test_chip_read_passes_input_gradients_straight_through():
    """Chip in the loop: backward of an (ideal) chip read is grad @ W."""
    layer = aimc.convert(nn.Linear(5, 3), "ideal").eval()
    x = torch.randn(4, 5, requires_grad=True)
    g = torch.randn(4, 3)
    (layer(x) * g).sum().backward()
    assert torch.allclose(x.grad, g @ layer.weight.detach(), atol=1e-6)


@pytest.mark.parametrize("padding,padding_mode", [(1, "zeros"), ("same", "zeros"), (1, "reflect")])
def test_conv_training_read_equals_chip_read_with_static_input_range(padding, padding_mode):
    """Static range: the im2col-free training read (stacked tile convolutions) is the
    chip's per-patch DAC/tile/ADC read; 300 input rows split over two 256-row tiles."""
    torch.manual_seed(0)
    conv = nn.Conv2d(12, 5, 5, padding=padding, padding_mode=padding_mode)  # K = 300: two tiles
    a = aimc.convert(conv, _quiet_hermes())
    enable_hat(a, HATConfig(noise_scale=0.0, input_range="learned", input_range_decay=0.0), seed=0)
    x = torch.randn(3, 12, 9, 9)
    with torch.no_grad():
        a.input_range.fill_(2.5)
        y_hat = a.train()(x)
        y_chip = a.eval()(x)
    assert y_hat.shape == y_chip.shape
    lsb = a.chip.adc.bound / 127 * a.weight.abs().amax() * 2.5
    assert (y_hat - y_chip).abs().max() <= 2 * lsb  # rare rounding-boundary flips only
    assert (y_hat - y_chip).abs().mean() <= 1e-3 * y_chip.abs().mean()


def test_conv_training_read_with_abs_max_scaling_matches_chip_up_to_dac_noise():
    torch.manual_seed(1)
    a = aimc.convert(nn.Conv1d(4, 6, 3, padding=1, stride=2), _quiet_hermes())
    enable_hat(a, HATConfig(noise_scale=0.0), seed=0)
    x = torch.randn(16, 4, 40)
    with torch.no_grad():
        y_hat, y_chip = a.train()(x), a.eval()(x)
    err = (y_hat - y_chip) / y_chip.abs().max()
    assert float(err.abs().mean()) < 0.01 and abs(float(err.mean())) < 0.002  # only DAC-noise size errors


def test_tabulated_device_std_matches_the_formula():
    from aimc.train.hat import HATForward

    dev = DEVICES.get("pcm-hermes")()
    fwd = HATForward(HATConfig(t_eval_s=31_536_000.0, t_eval_max_s=None), torch.Generator().manual_seed(0))
    w = torch.rand(5000) * 2 - 1
    exact = device_weight_std(w.double(), dev, 31_536_000.0).float()
    # nearest grid point: |dw| <= 1/8192, slope of the std at most ~0.3 -> <= 0.3 % of std >= 0.011
    assert torch.allclose(fwd._device_sd(w, dev), exact, rtol=5e-3, atol=1e-6)


@pytest.mark.parametrize("wn", [0.05, 0.4, 0.9])
def test_expected_drifted_weight_matches_monte_carlo(wn):
    """Mean of 20,000 programmed and drifted HERMES devices vs the log-normal formula."""
    from aimc.train.hat import expected_drifted_weight

    dev = DEVICES.get("pcm-hermes")(prog_noise_scale=0.0, read_noise_scale=0.0)
    t = 31_536_000.0
    dg = dev.g_max_uS - dev.g_min_uS
    target = torch.full((20_000, 1), dev.g_min_uS + wn * dg, dtype=torch.float64)
    st = dev.program(target, torch.Generator().manual_seed(3))
    mc = float((dev.at_time(st, t).mean() - dev.g_min_uS) / dg)  # G- at g_min: its drift is 0 when g_min = 0
    got = float(expected_drifted_weight(torch.tensor([wn], dtype=torch.float64), dev, t))
    sem = float(dev.at_time(st, t).std() / dg) / math.sqrt(20_000)
    assert got == pytest.approx(mc, abs=4 * sem + 2e-3 * mc)  # nu clipped at 0 in the model: tiny bias


def test_expected_drift_makes_small_weights_shrink_more_on_hermes():
    from aimc.train.hat import expected_drifted_weight

    dev = DEVICES.get("pcm-hermes")()
    w = torch.tensor([0.05, 1.0], dtype=torch.float64)
    ratio = expected_drifted_weight(w, dev, 31_536_000.0) / w
    assert float(ratio[0]) < 0.6 * float(ratio[1])  # mean nu 0.07+ vs 0.02 (module doc)
    with pytest.raises(aimc.config.ConfigError, match="t_eval_max_s"):
        HATConfig.from_dict({"t_eval_s": 100.0, "t_eval_max_s": 10.0})


def test_clip_value_clips_stored_weights_to_a_fixed_range():
    w = torch.tensor([[2.0, -0.3], [-1.5, 0.7]])
    layer = _one_layer(w, HATConfig(noise_scale=0.0, clip_value=1.0))
    layer(torch.randn(3, 2))
    assert torch.equal(layer.weight.detach(), torch.tensor([[1.0, -0.3], [-1.0, 0.7]]))
    with pytest.raises(aimc.config.ConfigError, match="clip_value"):
        HATConfig.from_dict({"clip_value": -1.0})


@pytest.mark.parametrize("fused", [True, False])
def test_training_time_is_drawn_once_per_model_pass(fused, monkeypatch):
    """time_draw="pass": every layer of one forward pass reads the chip at the same time
    since programming, and the times vary across passes over the 17-point grid;
    time_draw="layer": layers draw independently (some pass has two different times)."""
    from aimc.train import hat_fused
    from aimc.train.hat import HATForward
    if not fused:
        monkeypatch.setattr(hat_fused, "usable", lambda *a: False)
    seen = []
    real = HATForward._tables
    monkeypatch.setattr(HATForward, "_tables", lambda self, dev, t_s, like: seen.append(t_s) or real(self, dev, t_s, like))
    torch.manual_seed(0)
    model = aimc.convert(nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3)),
                         "pcm-hermes")
    x = torch.randn(4, 8)
    per_pass = {}
    for draw in ("pass", "layer"):
        enable_hat(model, HATConfig(time_draw=draw), seed=0)
        passes = []
        for _ in range(40):
            seen.clear()
            model.train()(x)
            passes.append(list(seen))
        per_pass[draw] = passes
    assert all(len(p) >= 3 and len(set(p)) == 1 for p in per_pass["pass"])  # >= one lookup per layer
    assert len({p[0] for p in per_pass["pass"]}) > 5
    assert any(len(set(p)) > 1 for p in per_pass["layer"])
    enable_hat(model, None)
    assert not model._forward_pre_hooks


@pytest.mark.parametrize("fused", [True, False])
def test_expected_drift_is_compensated_with_the_chips_gdc_statistic(fused, monkeypatch):
    """HAT's drift compensation is the chip's: ``sum |w| / sum sign(w) E[w(t)]`` over every
    weight (the one-hot calibration reads weighted by the programmed signs), not the
    all-ones column sums, which cancel for weights of both signs (here: every column sums
    to about 0, so the old statistic was off by orders of magnitude)."""
    from aimc.train import hat_fused
    from aimc.train.hat import expected_drifted_weight

    if fused and not hat_fused.usable(torch.zeros(1), torch.zeros(1)):
        pytest.skip("the C++ kernels are unavailable")
    t = 31_536_000.0
    lin = nn.Linear(32, 6, bias=False)
    with torch.no_grad():
        half = torch.rand(6, 16, generator=torch.Generator().manual_seed(1)) * 0.9 + 0.1
        lin.weight.copy_(torch.cat([half, -half.flip(1)], dim=1))  # each row sums to ~0
    chip = aimc.chips.load("pcm-hermes").replace(ir_drop=IRDropConfig(mode="none", r_wire_ohm=0.0))
    a = aimc.convert(lin, chip)
    enable_hat(a, HATConfig(noise_scale=0.0, t_eval_s=t, t_eval_max_s=None, expected_drift=True,
                            quantize_io=False), seed=0)
    x = torch.randn(8, 32, generator=torch.Generator().manual_seed(2))
    with monkeypatch.context() as m:
        if not fused:
            m.setattr(hat_fused, "usable", lambda *args: False)
        with torch.no_grad():
            y = a.train()(x)
    w = lin.weight.detach().double()
    scale = w.abs().amax(dim=1, keepdim=True)  # one tile: one scale per column
    wd = torch.sign(w) * expected_drifted_weight((w.abs() / scale), a.chip.device, t) * scale
    gdc = w.abs().sum() / (torch.sign(w) * wd).sum()
    expect = x.double() @ (wd * gdc).t()
    assert float(gdc) > 1.05  # drift shrinks the weights: compensation is needed
    torch.testing.assert_close(y.double(), expect, rtol=2e-3, atol=2e-3 * float(expect.abs().max()))
