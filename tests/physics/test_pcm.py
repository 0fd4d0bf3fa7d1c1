"""Statistics of the PCM models against their published formulas (fixed seeds).

Tolerances are z = 5 standard errors of the estimator for the sample size used:
SE(mean) = s / sqrt(n), SE(std) ~= s / sqrt(2 (n - 1)) for Gaussian samples.
"""
import math

import pytest
import torch

from aimc.physics.devices import DEVICES, DeviceState
from aimc.physics.drift import power_law_drift
from aimc.physics.pcm import PCM

N = 20_000
Z = 5.0


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kind", ["pcm", "pcm-hermes"])
@pytest.mark.parametrize("frac", [0.25, 0.5, 0.9])
def test_programming_noise_mean_and_std(kind, frac):
    dev = DEVICES.get(kind)()
    g_t = torch.full((N,), frac * dev.g_max_uS, dtype=torch.float64)
    g = dev.program(g_t, gen(1)).g_uS
    sigma = float(dev.prog_noise_std_uS(g_t[:1]))
    assert sigma > 0
    assert abs(float(g.mean()) - float(g_t[0])) <= Z * sigma / math.sqrt(N)
    assert abs(float(g.std()) - sigma) <= Z * sigma / math.sqrt(2 * (N - 1))


def test_pcm_programming_noise_golden_numbers():
    # sigma_prog = (0.26348 + 1.9650 x - 1.1731 x^2) * g_max/25 (Nandakumar 2019)
    dev = PCM()
    g_t = torch.tensor([0.0, 12.5, 25.0], dtype=torch.float64)
    expected = [0.26348, 0.26348 + 1.9650 * 0.5 - 1.1731 * 0.25, 0.26348 + 1.9650 - 1.1731]
    assert torch.allclose(dev.prog_noise_std_uS(g_t), torch.tensor(expected, dtype=torch.float64))
    assert torch.allclose(PCM(g_max_uS=50.0).prog_noise_std_uS(2 * g_t), 2 * torch.tensor(expected, dtype=torch.float64))


@pytest.mark.parametrize("kind", ["pcm", "pcm-hermes"])
@pytest.mark.parametrize("frac", [0.3, 0.9])
def test_drift_exponent_statistics(kind, frac):
    dev = DEVICES.get(kind)()
    g_t = torch.full((N,), frac * dev.g_max_uS, dtype=torch.float64)
    nu = dev.program(g_t, gen(2)).drift
    mu, sd = (float(a[0]) for a in dev.drift_mean_std(g_t[:1]))
    assert (nu >= 0).all()
    assert mu - 4 * sd > 0  # P(clip at 0) < 4e-5: its effect on mean and std is negligible
    assert abs(float(nu.mean()) - mu) <= Z * sd / math.sqrt(N)
    assert abs(float(nu.std()) - sd) <= Z * sd / math.sqrt(2 * (N - 1))


def test_pcm_drift_mean_golden_numbers():
    dev = PCM()
    g = torch.tensor([25.0, 2.5, 0.01], dtype=torch.float64)  # g/g_max = 1, 0.1, 4e-4
    mu, sd = dev.drift_mean_std(g)
    # mu = clip(-0.0155 ln(x) + 0.0244, 0.049, 0.1); sd = clip(-0.0125 ln(x) - 0.0059, 0.008, 0.045)
    assert torch.allclose(mu, torch.tensor([0.049, -0.0155 * math.log(0.1) + 0.0244, 0.1], dtype=torch.float64))
    assert torch.allclose(sd, torch.tensor([0.008, -0.0125 * math.log(0.1) - 0.0059, 0.045], dtype=torch.float64))


def test_power_law_drift_exact():
    g = torch.tensor([10.0, 20.0], dtype=torch.float64)
    nu = torch.tensor([0.05, 0.1], dtype=torch.float64)
    out = power_law_drift(g, nu, 3600.0, 20.0)
    assert torch.allclose(out, g * (3600.0 / 20.0) ** (-nu))
    assert torch.equal(power_law_drift(g, nu, 5.0, 20.0), g)  # before t0: as programmed
    for bad in (-1.0, float("nan"), float("inf")):  # NaN used to slip through as g * nan
        with pytest.raises(ValueError, match="t_s must be a finite time >= 0 seconds"):
            power_law_drift(g, nu, bad, 20.0)


def test_pcm_read_noise_golden_number():
    # sigma = g Q_s sqrt(ln((t + t_read)/(2 t_read))), Q_s = min(0.0088/max((g/gmax)^0.65,1e-3), 0.2)
    dev = PCM()
    t = 3600.0
    log_term = math.sqrt(math.log((t + 250e-9) / (2 * 250e-9)))
    g = torch.tensor([25.0, 5.0, 1e-4], dtype=torch.float64)
    q = [0.0088, 0.0088 / (0.2**0.65), 0.2]
    expected = torch.tensor([25.0 * q[0], 5.0 * q[1], 1e-4 * q[2]], dtype=torch.float64) * log_term
    st = DeviceState(g, torch.zeros_like(g))  # no drift: g(t) = g_prog
    assert torch.allclose(dev.read_noise_std_uS(st, t), expected)
    assert float(dev.read_noise_std_uS(st, t)[0]) == pytest.approx(1.048, abs=1e-3)


@pytest.mark.parametrize("kind", ["pcm", "pcm-hermes"])
def test_read_noise_after_drift_takes_q_s_from_the_programmed_conductance(kind):
    """sigma(t) = |g(t)| Q_s(g_prog) sqrt(ln((t + t_read) / (2 t_read))) (aihwkit 1.2,
    PCMLikeNoiseModel / HermesNoiseModel): the relative read noise sigma / g(t) does not
    grow with drift. Q_s(g(t)) instead would be (g_prog / g(t))^0.65 = 1.6x larger here."""
    dev = DEVICES.get(kind)()
    t = 31_536_000.0
    g_prog = torch.tensor([0.9, 0.5, 0.2], dtype=torch.float64) * dev.g_max_uS
    nu = torch.tensor([0.06, 0.08, 0.1], dtype=torch.float64)
    st = DeviceState(g_prog, nu)
    g_t = g_prog * (t / dev.t0_s) ** (-nu)
    log_term = math.sqrt(math.log((t + dev.t_read_s) / (2 * dev.t_read_s)))
    x = g_prog / dev.g_max_uS
    if kind == "pcm":  # published formulas, written out independently of the model code
        q = (0.0088 / x**0.65).clamp(max=0.2)
    else:  # x >= 0.16: the cubic branch
        q = 0.0123 + 0.0211 * x - 0.0280 * x**2 + 0.0069 * x**3
    expected = g_t * q * log_term
    assert torch.allclose(dev.read_noise_std_uS(st, t), expected, rtol=1e-12)
    assert torch.allclose(dev.read_noise_std_uS(st, t, g_t), expected, rtol=1e-12)
    rel = dev.read_noise_std_uS(st, t) / g_t  # relative noise: that of the programmed state
    assert torch.allclose(rel, q * log_term, rtol=1e-12)


def test_same_seed_same_chip():
    dev = DEVICES.get("pcm-hermes")()
    g_t = torch.rand(1000, dtype=torch.float64) * dev.g_max_uS
    a, b = dev.program(g_t, gen(7)), dev.program(g_t, gen(7))
    c = dev.program(g_t, gen(8))
    assert torch.equal(a.g_uS, b.g_uS) and torch.equal(a.drift, b.drift)
    assert not torch.equal(a.g_uS, c.g_uS)


def test_drift_lowers_conductance_over_time():
    dev = PCM()
    st = dev.program(torch.full((N,), 20.0, dtype=torch.float64), gen(3))
    g_day, g_year = dev.at_time(st, 86400.0), dev.at_time(st, 3.15e7)
    assert (g_day <= st.g_uS).all() and (g_year <= g_day).all()
    ratio = float((g_year / st.g_uS).mean())
    mu, _ = dev.drift_mean_std(torch.tensor([20.0]))
    assert ratio == pytest.approx((3.15e7 / 20.0) ** (-float(mu)), rel=0.02)


def test_hermes_fits_golden_numbers():
    """Values of aihwkit's HermesNoiseModel (2 devices) fits at x = g/g_max = 1."""
    dev = DEVICES.get("pcm-hermes")()
    one = torch.tensor([dev.g_max_uS], dtype=torch.float64)
    assert float(dev.prog_noise_std_uS(one)) == pytest.approx(0.16603222 + 4.71806468 - 8.48101252 + 4.68961419)
    mu, sd = dev.drift_mean_std(one)
    assert float(mu) == pytest.approx(0.0736 - 0.0126 - 0.0436)
    assert float(sd) == pytest.approx(0.0073 + 0.0093 - 0.0118)
    assert float(dev.read_q(one)) == pytest.approx(0.0123 + 0.0211 - 0.0280 + 0.0069)
    assert (dev.t0_s, dev.t_read_s, dev.g_max_uS) == (300.0, 512e-9, 20.7)


@pytest.mark.parametrize("brk", ["drift_mean_break", "drift_std_break", "read_q_break"])
def test_hermes_piecewise_fits_are_continuous(brk):
    dev = DEVICES.get("pcm-hermes")()
    x0 = getattr(dev, brk)
    g = torch.tensor([x0 * (1 - 1e-6), x0 * (1 + 1e-6)], dtype=torch.float64) * dev.g_max_uS
    if brk == "read_q_break":
        vals = dev.read_q(g)
    else:
        vals = dev.drift_mean_std(g)[0 if "mean" in brk else 1]
    # the published branches meet within 1.5 %; a mistyped coefficient would not
    assert abs(float(vals[0] - vals[1])) < 0.02 * float(vals.abs().max())
