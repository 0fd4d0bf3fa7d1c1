"""Oracle: on the ideal chip the analog layers equal their digital twins.

Shapes span several tiles in both directions (256x256 tiles), so tiling, padding and the
digital reduction of partial sums are all exercised.
"""
import pytest
import torch
from torch import nn

import aimc


def _check(digital, x, rtol=1e-5):
    analog = aimc.convert(digital, "ideal")
    aimc.program(analog, seed=0)
    ref = digital(x)
    out = analog(x)
    assert out.shape == ref.shape
    scale = ref.abs().max()
    assert (out - ref).abs().max() <= rtol * scale * 10  # float32 accumulation-order differences


@pytest.mark.parametrize("shape", [(600, 300), (256, 256), (257, 513), (10, 3)])
def test_linear_equals_torch(shape):
    n_in, n_out = shape
    _check(nn.Linear(n_in, n_out), torch.randn(9, n_in))


def test_linear_3d_input():
    _check(nn.Linear(300, 20), torch.randn(2, 5, 300))


@pytest.mark.parametrize("kw", [dict(stride=1, padding=1), dict(stride=2, padding=0, dilation=2),
                                dict(padding="same"), dict(padding=1, padding_mode="reflect")])
def test_conv2d_equals_torch(kw):
    conv = nn.Conv2d(32, 300, 3, **kw)  # 288 inputs per patch -> 2 tiles, 300 outputs -> 2 tiles
    _check(conv, torch.randn(2, 32, 9, 9))


def test_conv1d_equals_torch():
    _check(nn.Conv1d(40, 70, 7, stride=2, padding=3), torch.randn(3, 40, 50))


def test_unprogrammed_ideal_layer_equals_torch():
    lin = nn.Linear(300, 40)
    x = torch.randn(4, 300)
    assert torch.allclose(aimc.convert(lin, "ideal")(x), lin(x), atol=1e-5)
