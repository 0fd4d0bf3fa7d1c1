"""RRAM, ECRAM, SRAM and ideal devices: levels, variation, faults, retention, noise."""
import math

import pytest
import torch

from aimc.config import ConfigError
from aimc.physics.devices import DEVICES, quantise_to_levels
from aimc.physics.ecram import ECRAM
from aimc.physics.sram import SRAM
from aimc.physics.rram import RRAM

N = 40_000
Z = 5.0


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_registry_has_all_families():
    assert {"ideal", "pcm", "pcm-hermes", "rram", "ecram", "sram"} <= set(DEVICES.names())


def test_ideal_is_exact():
    dev = DEVICES.get("ideal")()
    g = torch.rand(100) * 25
    st = dev.program(g, gen())
    assert torch.equal(st.g_uS, g) and torch.equal(dev.at_time(st, 1e7), g)
    assert dev.read_noise_std_uS(st, 1.0) is None


def test_quantise_to_levels():
    g = torch.tensor([0.0, 0.24, 0.26, 0.74, 1.0, 2.0])
    assert quantise_to_levels(g, 0.0, 1.0, 3).tolist() == [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]


def test_rram_levels_and_lognormal_variation():
    dev = RRAM(sigma_c2c=0.0, p_stuck_on=0.0, p_stuck_off=0.0)
    step = (dev.g_max_uS - dev.g_min_uS) / (dev.n_levels - 1)
    target = torch.full((N,), dev.g_min_uS + 7.3 * step, dtype=torch.float64)
    g = dev.program(target, gen(1)).g_uS
    level = dev.g_min_uS + 7 * step
    logr = torch.log(g / level)
    # log of a lognormal factor: mean 0, std sigma_d2d
    assert abs(float(logr.mean())) <= Z * dev.sigma_d2d / math.sqrt(N)
    assert abs(float(logr.std()) - dev.sigma_d2d) <= Z * dev.sigma_d2d / math.sqrt(2 * (N - 1))


def test_rram_d2d_and_c2c_add_in_log_domain():
    dev = RRAM(sigma_d2d=0.03, sigma_c2c=0.04, p_stuck_on=0.0, p_stuck_off=0.0)
    target = torch.full((N,), dev.g_max_uS, dtype=torch.float64)
    s = float(torch.log(dev.program(target, gen(2)).g_uS / dev.g_max_uS).std())
    expected = math.hypot(0.03, 0.04)
    assert abs(s - expected) <= Z * expected / math.sqrt(2 * (N - 1))


def test_rram_stuck_at_fault_rates():
    dev = RRAM(sigma_d2d=0.0, sigma_c2c=0.0, p_stuck_on=0.01, p_stuck_off=0.02)
    mid = torch.full((N,), 0.5 * (dev.g_max_uS + dev.g_min_uS), dtype=torch.float64)
    g = dev.program(mid, gen(3)).g_uS
    for value, p in ((dev.g_max_uS, 0.01), (dev.g_min_uS, 0.02)):
        frac = float((g == value).double().mean())
        assert abs(frac - p) <= Z * math.sqrt(p * (1 - p) / N)


def test_rram_retention_spread_grows_with_log_time():
    dev = RRAM(sigma_d2d=0.0, sigma_c2c=0.0, p_stuck_on=0.0, p_stuck_off=0.0)
    st = dev.program(torch.full((N,), 20.0, dtype=torch.float64), gen(4))
    for t in (10.0, 1e4, 1e7):
        want = dev.sigma_ret_uS * math.log10(1 + t / dev.t_ret_s)
        got = float((dev.at_time(st, t) - st.g_uS).std())
        assert abs(got - want) <= Z * want / math.sqrt(2 * (N - 1))


def test_rram_validation_names_field():
    with pytest.raises(ConfigError, match="g_min_uS"):
        RRAM.from_dict({"kind": "rram", "g_max_uS": 40.0, "on_off_ratio": 10.0, "g_min_uS": 1.0})
    with pytest.raises(ConfigError, match="p_stuck_on"):
        RRAM.from_dict({"kind": "rram", "p_stuck_on": 1.5})


def test_ecram_levels_and_write_noise():
    dev = ECRAM(prog_noise_levels=0.5)
    step = (dev.g_max_uS - dev.g_min_uS) / (dev.n_levels - 1)
    target = torch.full((N,), 500.2 * step, dtype=torch.float64)
    st = dev.program(target, gen(5))
    g = st.g_uS
    assert abs(float(g.mean()) - 500 * step) <= Z * 0.5 * step / math.sqrt(N)
    assert abs(float(g.std()) - 0.5 * step) <= Z * 0.5 * step / math.sqrt(2 * (N - 1))
    assert torch.allclose(dev.read_noise_std_uS(st, 1.0), g * dev.read_noise_rel)


def test_sram_is_exact_on_its_grid():
    dev = SRAM(bits=4)
    grid = torch.arange(8, dtype=torch.float64) / 7 * dev.g_max_uS
    st = dev.program(grid + 0.3 / 7 * torch.sign(torch.randn(8, dtype=torch.float64)), gen())
    assert torch.allclose(st.g_uS, grid, rtol=0, atol=1e-12)  # snapped back onto the grid
    assert dev.read_noise_std_uS(st, 1.0) is None


@pytest.mark.parametrize("kind", ["ideal", "pcm", "pcm-hermes", "rram", "ecram", "sram"])
def test_read_noise_takes_the_programmed_state_and_time(kind):
    """Every device: std from (state, t); passing g(t) = at_time(state, t) changes nothing."""
    dev = DEVICES.get(kind)()
    st = dev.program(torch.linspace(dev.g_min_uS, dev.g_max_uS, 64, dtype=torch.float64), gen(6))
    t = 86_400.0
    sd = dev.read_noise_std_uS(st, t)
    if sd is None:
        assert kind in ("ideal", "sram") and dev.read_noise_std_uS(st, t, dev.at_time(st, t)) is None
        return
    assert torch.equal(sd, dev.read_noise_std_uS(st, t, dev.at_time(st, t)))
    assert (sd >= 0).all() and sd.shape == st.g_uS.shape


def test_rram_read_noise_is_relative_to_the_conductance_at_read_time():
    dev = RRAM()
    st = dev.program(torch.full((1000,), 20.0, dtype=torch.float64), gen(7))
    t = 86_400.0  # retention has moved each device by sigma_ret(t) * z
    g_t = dev.at_time(st, t)
    assert not torch.equal(g_t, st.g_uS)
    assert torch.allclose(dev.read_noise_std_uS(st, t), g_t * dev.read_noise_rel)
