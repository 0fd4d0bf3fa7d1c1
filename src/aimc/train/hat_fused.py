"""The HAT training read as two C++ calls per layer (forward, backward).

:class:`aimc.train.hat.HATForward` runs a layer's training read here when it can: float32
CPU tensors, the compiled kernels available (:mod:`aimc.cpp`), zero padding for
convolutions. The result is the same function as the PyTorch reference path of
:mod:`aimc.train.hat` (weights per tile column scaled to [-1, 1], expected compensated drift,
device weight noise, DAC, MVM, output noise, ADC with the clipped straight-through
gradient, tile sum, output gains, bias) and the same gradients; only the random stream
differs: the normal draws come from the counter-based generator of :mod:`aimc.cpp.rng`,
keyed by one 62-bit draw from the HAT generator per layer and pass (which also picks the
training time when ``t_eval_max_s`` is set).

Why: on the small layers of edge models the ~40 element-wise PyTorch operations of the
reference read cost more than the convolutions themselves (the digits CNN trained 3.5x
slower than plain PyTorch); here each layer is one autograd node whose forward and backward
each make one call into C++, around ATen's own ``mm``/``bmm``/``convolution`` kernels.

Example:
    >>> import torch, aimc
    >>> from aimc.train.hat import HATConfig, enable_hat
    >>> net = aimc.convert(torch.nn.Conv2d(1, 4, 3, padding=1), "pcm-hermes")
    >>> enable_hat(net, HATConfig(), seed=0)
    >>> net.train()(torch.randn(2, 1, 8, 8)).shape
    torch.Size([2, 4, 8, 8])
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from aimc import cpp

__all__ = ["Static", "usable", "read"]


class Static(NamedTuple):
    """The settings of a layer's fused read that do not change between passes."""

    T: int                               # tiles along the input
    R: int                               # rows per tile (``in_features`` when T == 1)
    noise_scale: float
    sd_const: float                      # weight noise std (x noise_scale) without a device table
    dac: int                             # DAC levels per sign, -1: none
    bound: float                         # ADC bound (device units)
    lsb: float                           # ADC step, 0: no ADC
    out_sd: float                        # output noise std
    quant: bool                          # quantize_io
    pads: list = []                      # conv: F.pad-order padding
    stride: list = []
    dilation: list = []


def usable(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """True when the fused read applies to these tensors (else use the PyTorch path)."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32
            and x.numel() > 0 and cpp.load() is not None)


def _grads(ctx):
    n = ctx.needs_input_grad  # x, weight, gdc, out_gain, bias, r
    return n[0], n[1], n[4], n[3], n[5]  # x, weight, bias, gain, r


class _Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, gdc, out_gain, bias, r, st: Static, mean_tab, sd_tab, seed: int, r_val: float):
        out, xq, amax, inside, pre, wn, scale, dfac, gain = cpp.load().hat_linear_fwd(
            x, weight, gdc, out_gain, bias, st.T, st.R, mean_tab, sd_tab, st.noise_scale, st.sd_const, r_val, st.dac,
            st.bound, st.lsb, st.out_sd, st.quant, seed, r_val > 0 or out_gain.requires_grad)
        ctx.save_for_backward(x, xq, amax, inside, pre, wn, scale, dfac, gain, gdc)
        ctx.r = r_val
        return out

    @staticmethod
    def backward(ctx, gout):
        *saved, gdc = ctx.saved_tensors
        gx, gw, gb, gg, gr = cpp.load().hat_linear_bwd(gout, *saved, ctx.r, *_grads(ctx))
        return gx, gw, None, None if gg is None else gg * gdc, gb, gr, None, None, None, None, None


class _Conv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, gdc, out_gain, bias, r, st: Static, mean_tab, sd_tab, seed: int, r_val: float):
        out, xe, xin, _, inside, pre, ws4, scale, dfac, gain = cpp.load().hat_conv_fwd(
            x, weight, gdc, out_gain, bias, st.T, st.R, mean_tab, sd_tab, st.noise_scale, st.sd_const, st.pads,
            st.stride, st.dilation, r_val, st.dac, st.bound, st.lsb, st.out_sd, st.quant, seed,
            r_val > 0 or out_gain.requires_grad)
        ctx.save_for_backward(x, xe, xin, inside, pre, ws4, scale, dfac, gain, weight, gdc)
        ctx.st, ctx.r = st, r_val
        return out

    @staticmethod
    def backward(ctx, gout):
        st = ctx.st
        *saved, gdc = ctx.saved_tensors
        gx, gw, gb, gg, gr = cpp.load().hat_conv_bwd(gout, *saved, st.pads, st.stride, st.dilation, ctx.r,
                                                     *_grads(ctx))
        return gx, gw, None, None if gg is None else gg * gdc, gb, gr, None, None, None, None, None


def read(layer, x: torch.Tensor, st: Static, mean_tab: torch.Tensor | None, sd_tab: torch.Tensor | None, seed: int,
         r: torch.Tensor | None, conv: bool) -> torch.Tensor:
    """The whole training read of ``layer`` (gain and bias included): (B, in) -> (B, out) for
    a linear layer, (B, C, *sp) -> (B, out, *osp) for a 1-d or 2-d convolution (``x``
    contiguous or channels-last; the output keeps oneDNN's layout). ``mean_tab``/``sd_tab``:
    the device tables at this pass's time (None: no drift / constant ``sd_const``);
    ``r``: the learned input range as a tensor, for its gradient, or None."""
    fn = _Conv if conv else _Linear
    return fn.apply(x if conv else x.contiguous(), layer.weight, layer.gdc, layer.out_gain, layer.bias, r, st,
                    mean_tab, sd_tab, seed, 0.0 if r is None else float(r.detach()))
