"""HATConfig.out_noise replaces the chip's output noise in the training read (fused C++
and PyTorch paths): with identity weights and no weight noise, the read's residual in
device units has std sqrt(out_noise^2 + lsb^2/12) (ADC step lsb; DAC error ~1e-6)."""
import math

import pytest
import torch

import aimc
from aimc.tiles import Periphery
from aimc.train.hat import HATConfig, enable_hat

N, B = 64, 64


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])  # fused / PyTorch read
@pytest.mark.parametrize("out_noise", [None, 0.3])
def test_output_noise_std(dtype, out_noise):
    lin = torch.nn.Linear(N, N, bias=False).to(dtype)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(N, dtype=dtype))
    net = aimc.convert(lin, "pcm-hermes")
    enable_hat(net, HATConfig(noise_scale=0.0, t_eval_max_s=None, expected_drift=False, out_noise=out_noise), seed=1)
    x = torch.rand(B, N, generator=torch.Generator().manual_seed(2), dtype=dtype) * 2 - 1
    with torch.no_grad():
        y = net.train()(x)
    amax = x.abs().amax(dim=1, keepdim=True)
    res = ((y - x) / amax).flatten()
    per = Periphery.of(net.chip)
    sd = per.out_noise if out_noise is None else out_noise
    expect = math.sqrt(sd**2 + per.adc_lsb**2 / 12)
    se = expect / math.sqrt(2 * res.numel())
    assert abs(float(res.std()) - expect) < 5 * se, (float(res.std()), expect)
