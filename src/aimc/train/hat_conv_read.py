"""The PyTorch convolution read of hardware-aware training (:class:`aimc.train.hat.HATForward`
runs it where the fused kernels of :mod:`aimc.train.hat_fused` do not apply): the tiles'
weights stacked along the output channels, one convolution, the DAC exact for a static
input range or as its additive-noise equivalent for per-patch abs-max scaling, output
noise, ADC and bound management through the HAT read's own helpers.

Example:
    >>> import torch, aimc
    >>> from aimc.train.hat import HATConfig, enable_hat
    >>> net = aimc.convert(torch.nn.Conv2d(1, 2, 3), "pcm-hermes")
    >>> enable_hat(net, HATConfig(), seed=0)
    >>> conv_read(net.train_forward, net, torch.randn(1, 1, 5, 5)).shape
    torch.Size([1, 2, 3, 3])
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from aimc.tiles import Periphery

__all__ = ["conv_read"]


def conv_read(hf: Any, layer, x: torch.Tensor) -> torch.Tensor:
    """(B, C, *spatial) -> (B, out, *out_spatial): the PyTorch convolution read of the HAT
    read ``hf`` (a :class:`aimc.train.hat.HATForward`) of ``layer``, before drift
    compensation, gains and bias (see that class's doc)."""
    chip, lay, nd = layer.chip, layer.layout, x.dim() - 2
    conv = F.conv1d if nd == 1 else F.conv2d
    pool = F.max_pool1d if nd == 1 else F.max_pool2d
    pads = layer._reversed_padding_repeated_twice
    if any(pads):  # explicit padding, so that the patches' abs-max sees the zeros too
        x = F.pad(x, pads, mode="constant" if layer.padding_mode == "zeros" else layer.padding_mode)
    wn, mult = hf._tile_weights(layer, hf._draw()[0])  # (U, out, R)
    U, n_out, R = wn.shape
    T = lay.t_in
    if T == 1:
        w_stack = wn.reshape(U * n_out, *layer.weight.shape[1:])
    else:  # each tile's weights on its own input rows, zero elsewhere
        eye = torch.eye(T, device=wn.device, dtype=wn.dtype)
        w_stack = (wn.view(U // T, T, n_out, 1, R) * eye.view(1, T, 1, T, 1)).reshape(U * n_out, T * R)
        w_stack = w_stack[:, :lay.in_features].reshape(U * n_out, *layer.weight.shape[1:])
    kw = dict(stride=layer.stride, dilation=layer.dilation)
    per = Periphery.of(chip)
    shape = (1, U, n_out, *([1] * nd))
    if hf.cfg.input_range == "learned" or not per.abs_max:  # static scale: the exact chip DAC
        amax = hf._input_range(layer, x) if hf.cfg.input_range == "learned" else per.dac_bound

        def run(f: float):
            y, sat = hf._adc(chip, conv(hf._dac(chip, x / (amax * f)), w_stack, **kw))  # (B, U*out, *o)
            sat = sat.any(dim=1, keepdim=True) if sat.dim() else sat
            return (y.unflatten(1, (U, n_out)) * mult.view(shape)).sum(dim=1) * (amax * f), sat
    else:
        amax = x.detach().abs().amax(dim=1, keepdim=True)
        for d in range(nd):  # patch abs-max, one spatial axis at a time (separable max)
            one = [1] * nd
            k, st, dl = list(one), list(one), list(one)
            k[d], st[d], dl[d] = layer.kernel_size[d], layer.stride[d], layer.dilation[d]
            amax = pool(amax, k, st, 0, dl)
        amax = amax.clamp(min=1e-12)  # (B, 1, *o)
        y0 = conv(x, w_stack, **kw)
        dac_sd = None
        dac = per.dac_max if hf.cfg.quantize_io else None
        if dac is not None:  # DAC rounding as its additive-noise equivalent
            dac_sd = (w_stack.detach().reshape(U * n_out, -1).pow(2).sum(1) / (12.0 * dac**2)).sqrt()
            dac_sd = dac_sd.view(1, -1, *([1] * nd))

        def run(f: float):
            y, sat = hf._adc(chip, y0 / (amax * f) if f != 1.0 else y0 / amax, dac_sd)
            sat = sat.any(dim=1, keepdim=True) if sat.dim() else sat
            return (y.unflatten(1, (U, n_out)) * mult.view(shape)).sum(dim=1) * (amax * f), sat

    return hf._bound_managed(chip, run)
