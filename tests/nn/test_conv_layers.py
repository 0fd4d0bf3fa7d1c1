"""Analog convolution layers: the inference read (tiles.conv, no im2col matrix) against the
im2col rows that the gradient path reads, gains and bias, gradients, determinism."""
import pytest
import torch
from torch import nn

import aimc
from aimc.chips import NoiseConfig
from aimc.tiles import fused

pytestmark = pytest.mark.skipif(not fused.available(), reason="compiled kernels not available")

QUIET = aimc.chips.load("pcm-hermes").replace(rows=32, noise=NoiseConfig(read_noise=False, out_noise=0.0))


def _programmed(layer, chip=QUIET, seed=0):
    a = aimc.convert(nn.Sequential(layer), chip)
    aimc.program(a, seed=seed)
    aimc.drift(a, t_s=3600.0)
    return a[0]


@pytest.mark.parametrize("layer,shape", [
    (nn.Conv2d(3, 6, 3, stride=2, padding=1, dilation=1), (4, 3, 11, 9)),    # 1 tile
    (nn.Conv2d(5, 4, (3, 2), padding=(1, 0), dilation=(2, 1)), (2, 5, 9, 9)),  # 30 rows: 1 tile of 32
    (nn.Conv2d(8, 4, 3, padding="same", padding_mode="reflect"), (2, 8, 7, 7)),  # 72 rows: 3 tiles
    (nn.Conv1d(12, 5, 4, stride=2, padding=3), (3, 12, 30)),                  # 48 rows: 2 tiles
])
def test_inference_read_equals_im2col_gradient_path(layer, shape):
    torch.manual_seed(0)
    a = _programmed(layer)
    with torch.no_grad():
        a.out_gain.uniform_(0.5, 1.5)
    x = torch.randn(*shape)
    with torch.no_grad():
        fast = a(x)  # tiles.conv.conv_mvm
    xr = x.clone().requires_grad_(True)
    rows = a(xr)  # the chip read of im2col rows with a straight-through gradient
    assert fast.shape == rows.shape == layer(x).shape
    assert torch.allclose(fast, rows.detach(), rtol=1e-5, atol=1e-5 * rows.abs().max().item())
    rows.sum().backward()
    assert xr.grad is not None and xr.grad.abs().sum() > 0


def test_trained_gain_and_bias_get_gradients_on_the_fast_read():
    a = _programmed(nn.Conv2d(2, 3, 3))
    a.out_gain.requires_grad_(True)
    y = a(torch.randn(2, 2, 6, 6))  # x needs no gradient: the read without im2col
    y.sum().backward()
    assert a.out_gain.grad is not None and a.bias.grad is not None


def test_noisy_model_is_deterministic_for_a_seed():
    from aimc.workloads.models import fashion_cnn

    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    outs = []
    for _ in range(2):
        net = aimc.convert(fashion_cnn(seed=0), "pcm-hermes").eval()
        aimc.program(net, seed=3)
        aimc.drift(net, t_s=3600.0)
        with torch.no_grad():
            outs.append(net(x))
    assert torch.equal(outs[0], outs[1])
    with torch.no_grad():
        assert not torch.equal(net(x), outs[1])  # the next read draws new noise
