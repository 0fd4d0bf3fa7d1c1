"""Odd values are refused where they are given, with a message naming them (issue 10, item 7)."""
import numpy as np
import pytest
import torch
from torch import nn

import aimc


@pytest.fixture
def analog():
    torch.manual_seed(0)
    m = aimc.convert(nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2)), "pcm")
    aimc.program(m, seed=0)
    return m


@pytest.mark.parametrize("t", [float("inf"), float("nan"), -1.0, -float("inf")])
def test_drift_refuses_non_finite_or_negative_time_and_keeps_state(analog, t):
    aimc.drift(analog, 60.0)
    with pytest.raises(ValueError, match=r"t_s must be a finite time >= 0 seconds"):
        aimc.drift(analog, t)
    assert all(float(m.t_s) == 60.0 for _, m in aimc.nn.analog_layers(analog))
    assert torch.isfinite(analog(torch.rand(3, 6))).all()  # the next read still works


@pytest.mark.parametrize("t", ["1 day", None, True, [1.0]])
def test_drift_refuses_non_numbers_with_a_clear_type_error(analog, t):
    with pytest.raises(TypeError, match=r"t_s must be a number of seconds"):
        aimc.drift(analog, t)


@pytest.mark.parametrize("t", [3, 2.5, np.float32(7.0), torch.tensor(9.0)])
def test_drift_accepts_real_numbers(analog, t):
    aimc.drift(analog, t)
    assert float(analog[0].t_s) == float(t)


def test_float64_input_names_layer_and_dtypes(analog):
    with pytest.raises(TypeError, match=r"AnalogLinear\(4, 6\): input dtype torch\.float64 differs from the "
                                        r"layer's torch\.float32"):
        analog(torch.rand(3, 6, dtype=torch.float64))
    conv = aimc.convert(nn.Conv2d(1, 2, 3), "ideal")
    with pytest.raises(TypeError, match=r"AnalogConv2d.*float64.*float32"):
        conv(torch.rand(1, 1, 5, 5, dtype=torch.float64))
    assert analog(torch.rand(3, 6)).dtype == torch.float32


def test_estimate_prices_a_recurrent_model_and_names_what_it_cannot_price():
    import aimc.cost

    T, B, H = 5, 2, 16
    r = aimc.cost.estimate(nn.LSTM(8, H, batch_first=True), inputs=torch.randn(B, T, 8))  # used to fail
    assert [lc.name for lc in r.layers] == ["l0.ih", "l0.hh"]
    assert [lc.macs for lc in r.layers] == [T * 8 * 4 * H, T * H * 4 * H]  # per sample: T steps, 4 gates
    with pytest.raises(ValueError, match=r"Embedding has no layer this cost model prices.*its weight layers are "
                                         r"Embedding"):
        aimc.cost.estimate(nn.Embedding(10, 4), inputs=torch.randint(0, 10, (2, 3)))
