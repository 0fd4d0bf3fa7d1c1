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


def test_estimate_of_a_model_without_priced_layers_says_so():
    import aimc.cost

    with pytest.raises(ValueError, match=r"LSTM has no layer this cost model prices.*LayerWork"):
        aimc.cost.estimate(nn.LSTM(8, 16), inputs=torch.randn(5, 2, 8))
