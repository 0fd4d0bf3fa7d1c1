"""Global drift compensation: spread of the factor over chips and its accuracy under drift.

24 chips (seeds) of one fixed 64 -> 10 layer on the ``pcm`` chip. Bounds are derived from
the models, not fitted:

* estimator noise: the statistic ``a = sum_ij s_ij ybar_ij`` (aimc.physics.drift) is linear
  in R one-hot reads per row, so ``Var(a) = sum_ij scale_j^2 v_ij / R`` with the per-read
  variance ``v_ij = T_in out_noise^2 + lsb^2 / 12 + (sd+_ij^2 + sd-_ij^2) / dg^2`` in device
  units (output noise of every input tile's column, ADC rounding, read noise of the pair);
  ``CV(f)^2 = Var(a0) / a0^2 + Var(a_t) / a_t^2``;
* physics: with ``d = (t / t0)^-nu``, ``nu ~ N(mu, s)`` per device, ``E[d] = exp(-mu L + s^2
  L^2 / 2)`` and ``Var(d) = E[d]^2 (exp(s^2 L^2) - 1)``, ``L = ln(t / t0)``: the |w|-weighted
  drift of the layer varies over chips by ``CV^2 = sum g^2 Var(d) / (sum g E[d])^2`` (sums
  over devices, signed by the weight, in weight units);
* a sample std from n = 24 chips exceeds the true std by more than sqrt(chi2_0.999(23) / 23)
  = 1.47 with probability 1e-3; means are checked to 5 standard errors.
"""
import math

import pytest
import torch
from torch import nn

import aimc
from aimc.physics.devices import DeviceState
from aimc.physics.drift import gdc_repeats
from aimc.physics.periphery import max_code
from aimc.tiles import encode

N_CHIPS = 24
STD_MARGIN = math.sqrt(49.73 / 23)  # chi-square 99.9 % quantile, 23 degrees of freedom
YEAR_S = 31_536_000.0


def layer(chip):
    lin = nn.Linear(64, 10, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(10, 64, generator=torch.Generator().manual_seed(0)))
    return aimc.convert(lin, chip)


def estimator_cv2(a, t_s: float) -> float:
    """Var(a) / a^2 of one calibration at time t_s (module doc), from the layer's state."""
    chip, dev = a.chip, a.chip.device
    dg = dev.g_max_uS - dev.g_min_uS
    st = DeviceState(a.g_uS, a.drift_state)
    g_t = dev.at_time(st, t_s)
    sd = dev.read_noise_std_uS(st, t_s, g_t)
    v = chip.noise.out_noise**2 * a.layout.t_in + (chip.adc.bound / max_code(chip.adc.bits)) ** 2 / 12
    v = v + (0.0 if sd is None else (sd[0, 0] ** 2 + sd[0, 1] ** 2) / dg**2)  # (T, R, out)
    scale = a.out_scale[0][:, None, :]  # (T, 1, out)
    w_t = (g_t[0, 0] - g_t[0, 1]) / dg * scale
    rows = encode(a.analog_weight(), chip).used[:, :, None]  # (T, R, 1): padding rows are not read
    var = float((v * scale**2 * rows).sum()) / gdc_repeats(64, 10)
    return var / float(w_t.abs().sum()) ** 2


def drift_cv2(a, t_s: float) -> float:
    """Chip-to-chip CV^2 of the |w|-weighted drift of the layer (module doc)."""
    dev = a.chip.device
    dg = dev.g_max_uS - dev.g_min_uS
    g_target = encode(a.analog_weight(), a.chip).g_target_uS[0].double()  # (2, T, R, out)
    mu, s = dev.drift_mean_std(g_target)
    mu, s = mu * dev.drift_scale, s * dev.drift_scale
    L = math.log(t_s / dev.t0_s)
    e_d = torch.exp(-mu * L + 0.5 * (s * L) ** 2)
    var_d = e_d**2 * torch.expm1((s * L) ** 2)
    scale = a.out_scale[0][:, None, :].double() / dg
    sign = torch.sign(g_target[0] - g_target[1])
    mean = float((sign * (g_target[0] * e_d[0] - g_target[1] * e_d[1]) * scale).sum())
    var = float(((g_target[0] ** 2 * var_d[0] + g_target[1] ** 2 * var_d[1]) * scale**2).sum())
    return var / mean**2


def factors(a, t_s: float):
    out = []
    for seed in range(N_CHIPS):
        aimc.program(a, seed=seed)
        aimc.drift(a, t_s)
        aimc.compensate(a)
        out.append(float(a.gdc))
    return torch.tensor(out, dtype=torch.float64)


def test_factor_without_drift_is_one_within_the_read_noise_of_the_calibration():
    """1 s after programming (before t0 = 20 s) nothing has drifted: the factor is 1 up to
    the calibration's own read/output/ADC noise, predicted from the model."""
    a = layer(aimc.chips.load("pcm"))
    f = factors(a, 1.0)
    cv = math.sqrt(estimator_cv2(a, 0.0) + estimator_cv2(a, 1.0))
    assert cv < 0.005  # the design target: well under 1 %
    assert abs(float(f.mean()) - 1.0) <= 5 * cv / math.sqrt(N_CHIPS)
    assert float(f.std()) <= STD_MARGIN * cv


def test_factor_spread_after_a_year_is_the_physical_spread_of_the_drift():
    """Published PCM model, 1 year: the factor tracks each chip's own drift; its spread
    over chips is the drift's (|w|-weighted mean over 640 devices) plus estimator noise."""
    a = layer(aimc.chips.load("pcm"))
    f = factors(a, YEAR_S)
    cv = math.sqrt(drift_cv2(a, YEAR_S) + estimator_cv2(a, 0.0) + estimator_cv2(a, YEAR_S))
    assert cv < 0.015  # a 10-output layer: ~1 % is physics (the drift of 640 devices)
    rel = f / f.mean()
    assert float(rel.std()) <= STD_MARGIN * cv


def test_compensated_output_matches_the_programmed_output_under_strong_drift():
    """Drift exponent independent of conductance, nu ~ N(0.18, 0.06) (the pcm fit's
    x ~ 0.3 values scaled x3): every output drifts by the same expected factor, so after
    GDC the output's least-squares slope on the output at programming time is 1. Noise is
    removed from the slope by pairing independent reads: b = <y_t, y0> / <y0', y0>."""
    dev = aimc.chips.load("pcm").device.replace(
        drift_mean=(0.0, 0.06), drift_mean_clip=(0.06, 0.06), drift_std=(0.0, 0.02),
        drift_std_clip=(0.02, 0.02), drift_scale=3.0)
    a = layer(aimc.chips.load("pcm").replace(device=dev))
    x = torch.randn(512, 64, generator=torch.Generator().manual_seed(1))
    slopes, f = [], []
    with torch.no_grad():
        for seed in range(N_CHIPS):
            aimc.program(a, seed=seed)
            y0, y0b = a(x).double(), a(x).double()
            aimc.drift(a, YEAR_S)
            aimc.compensate(a)
            f.append(float(a.gdc))
            slopes.append(float((a(x).double() * y0).sum() / (y0b * y0).sum()))
    b, f = torch.tensor(slopes), torch.tensor(f)
    assert float(f.mean()) > 5.0  # strong drift: outputs shrink ~9x in a year
    cv_f = float(f.std() / f.mean())
    # 5 standard errors of the mean slope, plus the second-order bias of a ratio of
    # random sums (a0 / a_t): ~CV^2
    assert abs(float(b.mean()) - 1.0) <= 5 * float(b.std()) / math.sqrt(N_CHIPS) + 2 * cv_f**2


@pytest.mark.parametrize("chip", ["ideal", "sram-dcim"])
def test_exact_chips_have_factor_one(chip):
    a = layer(aimc.chips.load(chip))
    aimc.program(a, seed=0)
    aimc.drift(a, YEAR_S)
    aimc.compensate(a)
    assert float(a.gdc) == pytest.approx(1.0, abs=1e-6)


def test_reads_at_different_times_draw_independent_noise():
    """The read-noise stream is seeded by (chip, time): the calibration read at t does not
    repeat the noise of the reference read at 0, and the same time reads the same."""
    from aimc.chips import NoiseConfig

    a = layer(aimc.chips.load("ideal").replace(noise=NoiseConfig(read_noise=False, out_noise=0.1)))
    aimc.program(a, seed=0)
    x = torch.randn(256, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y0 = a(x)
        aimc.drift(a, 1.0)
        y1 = a(x)
        aimc.drift(a, 0.0)
        aimc.drift(a, 1.0)
        assert torch.equal(a(x), y1)  # setting a time restarts that time's stream
    w = a.weight.detach()
    e0, e1 = (y0 - x @ w.t()).flatten(), (y1 - x @ w.t()).flatten()
    r = float(torch.corrcoef(torch.stack([e0, e1]))[0, 1])  # ~N(0, 1/n) when independent
    assert abs(r) <= 5 / math.sqrt(e0.numel())
