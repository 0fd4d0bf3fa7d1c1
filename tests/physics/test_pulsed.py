"""Pulsed-update device physics: response formulas, their closed forms, device-to-device and
cycle-to-cycle statistics, validation and the cited fits."""
import math

import pytest
import torch

from aimc.config import ConfigError
from aimc.physics import PULSED_PRESETS, PulsedDevice
from aimc.physics.pulsed import (DeviceDraws, draw_devices, linear_coefficients, linear_response,
                                 midpoint_response, one_pulse, step_sizes, symmetry_point)

dt = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def nominal(dev, shape):
    """Draws of a device without device-to-device variation (the nominal parameters)."""
    return draw_devices(dev.replace(dw_min_dtod=0.0, w_bound_dtod=0.0), shape, gen(), dt)


def test_step_size_formulas():
    w = torch.tensor([[0.5, -0.5]], dtype=dt)
    sb = PulsedDevice(kind="soft_bounds", dw_min=0.01, up_down=0.2)
    up, dn = step_sizes(sb, w, nominal(sb, (1, 2)))
    assert torch.allclose(up, 0.012 * (1 - w)) and torch.allclose(dn, 0.008 * (1 + w))
    es = PULSED_PRESETS["reram_es"]
    up, dn = step_sizes(es, w, nominal(es, (1, 2)))
    z = 2 * es.es_a * w / 2.0 + es.es_b
    assert torch.allclose(up, es.dw_min * (1 + es.up_down) * (1 - es.es_A_up * torch.exp(5.0 * z)))
    assert torch.allclose(dn, es.dw_min * (1 - es.up_down) * (1 - es.es_A_down * torch.exp(-5.0 * z)))
    ec = PULSED_PRESETS["ecram"]
    up, dn = step_sizes(ec, w, nominal(ec, (1, 2)))
    assert torch.allclose(up, 0.002 * (1 - 0.1153 * w / 1.1724))
    assert torch.allclose(dn, 0.002 * (1 - 0.5085 * w / -0.8276))
    const = PulsedDevice(dw_min=0.01, up_down=-0.5)
    up, dn = step_sizes(const, w, nominal(const, (1, 2)))
    assert up.tolist() == [[0.005, 0.005]] and dn.tolist() == [[0.015, 0.015]]


@pytest.mark.parametrize("name", ["reram_sb", "ecram", "gokmen_vlasov"])
def test_linear_coefficients_give_the_step_sizes(name):
    dev = PULSED_PRESETS[name]
    draws = draw_devices(dev, (3, 4), gen(1), dt)
    w = torch.rand(3, 4, generator=gen(2), dtype=dt) - 0.5
    sa, sb = linear_coefficients(dev, draws)
    up, dn = step_sizes(dev, w, draws)
    signed = sa if sb is None else sa - sb * w
    assert torch.allclose(signed, torch.stack((up, -dn)), rtol=0, atol=1e-15)
    assert sb is None or bool((sb >= 0).all())
    assert linear_coefficients(PULSED_PRESETS["reram_es"], draws) is None  # not linear in w


def test_linear_response_closed_forms():
    """Soft bounds, n up pulses, noise off: dw/dn = dw_up*(1 - w/w_max) gives
    w = w_max - (w_max - w0)*exp(-n*dw_up/w_max); constant step: w0 + n_up*up - n_down*down."""
    dev = PulsedDevice(kind="soft_bounds", dw_min=0.01, up_down=0.2)
    draws = nominal(dev, (1, 3))
    sa, sb = linear_coefficients(dev, draws)
    w0 = torch.tensor([[-0.5, 0.0, 0.5]], dtype=dt)
    n = torch.stack((torch.tensor([[0.0, 10.0, 300.0]], dtype=dt), torch.zeros(1, 3, dtype=dt)))
    w1 = linear_response(w0, n, None, sa, sb, draws.w_min, draws.w_max, 0.0)
    expected = 1.0 - (1.0 - w0) * torch.exp(-n[0] * 0.012)
    assert w1[0, 0] == w0[0, 0] and torch.allclose(w1, expected, rtol=0, atol=1e-12)
    const = PulsedDevice(dw_min=0.01, up_down=0.2)
    cd = nominal(const, (1, 3))
    ca, cb = linear_coefficients(const, cd)
    n = torch.tensor([[[3.0, 0.0, 500.0]], [[1.0, 4.0, 0.0]]], dtype=dt)
    w1 = linear_response(w0, n, None, ca, cb, cd.w_min, cd.w_max, 0.0)
    assert cb is None and torch.allclose(w1, torch.tensor([[-0.5 + 0.036 - 0.008, -0.032, 1.0]], dtype=dt))
    # the midpoint rule is exact for a constant step too
    assert torch.allclose(midpoint_response(const, w0, n, None, cd), w1, rtol=0, atol=1e-15)


def test_symmetry_point_closed_form():
    dev = PulsedDevice(kind="soft_bounds", dw_min=0.01, up_down=0.3, dw_min_dtod=0.2, w_bound_dtod=0.1)
    d = draw_devices(dev, (4, 4), gen(5))
    sp = (d.dw_down - d.dw_up) / (d.dw_down / d.w_min - d.dw_up / d.w_max)
    assert torch.allclose(symmetry_point(dev, d), sp, atol=1e-5)
    assert torch.allclose(symmetry_point(dev, nominal(dev, (2, 2))), torch.full((2, 2), 0.3, dtype=dt), atol=1e-6)
    up_biased = PulsedDevice(dw_min=0.01, up_down=0.1)  # constant step drifts to its upper bound
    assert symmetry_point(up_biased, nominal(up_biased, (1,))).tolist() == [1.0]


def test_device_to_device_draws_have_the_stated_spread():
    """dw_up = dw_min*(1+up_down)*(1 + dtod*z), bounds w*(1 + w_bound_dtod*z); spreads small
    enough that the clamps never act. Mean within 5 standard errors, std within 5 of its
    standard error sigma/sqrt(2N)."""
    n = 40_000
    dev = PulsedDevice(kind="soft_bounds", dw_min=0.002, up_down=0.25, dw_min_dtod=0.1, w_bound_dtod=0.05,
                       w_max=1.25, w_min=-0.75)
    d = draw_devices(dev, (n,), gen(11), dt)
    for x, nom, rel in ((d.dw_up, 0.0025, 0.1), (d.dw_down, 0.0015, 0.1), (d.w_max, 1.25, 0.05),
                        (d.w_min, -0.75, 0.05)):
        r = x / nom
        assert abs(float(r.mean()) - 1.0) < 5 * rel / math.sqrt(n)
        assert abs(float(r.std()) - rel) < 5 * rel / math.sqrt(2 * n)
    assert torch.allclose(d.dw_up / 1.25, d.dw_down / 0.75, rtol=1e-12, atol=0)  # one draw, centred asymmetry
    one = draw_devices(dev, (5,), gen(3))
    assert one.dw_up.dtype == torch.float32 and isinstance(one, DeviceDraws)


def test_one_pulse_cycle_to_cycle_noise_and_bounds():
    """Each pulse's step is up*(1 + dw_min_std*z): mean the nominal step, std dw_min_std times
    it, within sampling error; pulses beyond a bound are clipped."""
    n = 40_000
    dev = PulsedDevice(dw_min=0.01, dw_min_std=0.3)
    d = nominal(dev, (n,))
    w0 = torch.zeros(n, dtype=dt)
    z = torch.randn(n, generator=gen(4), dtype=dt)
    dw = one_pulse(dev, w0, torch.ones(n, dtype=torch.bool), z, d) - w0
    assert abs(float(dw.mean()) - 0.01) < 5 * 0.003 / math.sqrt(n)
    assert abs(float(dw.std()) - 0.003) < 5 * 0.003 / math.sqrt(2 * n)
    top = one_pulse(dev, torch.full((2,), 0.995, dtype=dt), torch.tensor([True, False]), None, nominal(dev, (2,)))
    assert top.tolist() == [1.0, 0.985]


@pytest.mark.parametrize("bad, field", [
    ({"w_min": 1.0, "w_max": 1.0}, "w_min"),
    ({"w_min": 2.0, "w_max": 1.0}, "w_max"),
    ({"dw_min": 0.0}, "dw_min"),
    ({"dw_min": -0.1}, "dw_min"),
    ({"up_down": 1.0}, "up_down"),
    ({"dw_min_std": -1.0}, "dw_min_std"),
    ({"kind": "soft_bounds", "w_min": 0.1}, "w_min"),
    ({"kind": "magic"}, "kind"),
])
def test_bad_device_configs_name_the_field(bad, field):
    with pytest.raises(ConfigError, match=field):
        PulsedDevice.from_dict(bad)
    with pytest.raises(ValueError, match=field):
        PulsedDevice(**bad)


def test_presets_round_trip_and_cited_numbers():
    for dev in PULSED_PRESETS.values():
        assert PulsedDevice.from_dict(dev.to_dict()) == dev
    assert PULSED_PRESETS["reram_sb"].dw_min == 0.002
    assert (PULSED_PRESETS["reram_sb"].w_min, PULSED_PRESETS["reram_sb"].w_max) == (-0.75, 1.25)
    ec = PULSED_PRESETS["ecram"]
    assert ec.dw_min == 0.002 and round((ec.w_max - ec.w_min) / ec.dw_min) == 1000
    ideal = PULSED_PRESETS["idealized"]
    assert round((ideal.w_max - ideal.w_min) / ideal.dw_min) == 10000
    es = PULSED_PRESETS["reram_es"]  # centred form of aihwkit's one-sided up_down
    assert abs(es.dw_min * (1 + es.up_down) - 0.00135) < 1e-6
    assert abs(es.dw_min * (1 - es.up_down) - 0.00135 * (1 - 0.259359)) < 1e-6
