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
slower than plain PyTorch); here each layer is one C++ autograd node
(:mod:`aimc.cpp.hat_autograd`): one call from Python forward, none backward, around ATen's
own ``mm``/``bmm``/``convolution`` kernels.

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
    pads: tuple = ()                     # conv: F.pad-order padding
    stride: tuple = ()
    dilation: tuple = ()


def usable(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """True when the fused read applies to these tensors (else use the PyTorch path)."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32
            and x.numel() > 0 and cpp.load() is not None)


def read(layer, x: torch.Tensor, st: Static, mean_tab: torch.Tensor | None, sd_tab: torch.Tensor | None, seed: int,
         r: torch.Tensor | None, conv: bool) -> torch.Tensor:
    """The whole training read of ``layer`` (gain and bias included): (B, in) -> (B, out) for
    a linear layer, (B, C, *sp) -> (B, out, *osp) for a 1-d or 2-d convolution (``x``
    contiguous or channels-last; the output keeps oneDNN's layout). ``mean_tab``/``sd_tab``:
    the device tables at this pass's time (None: no drift / constant ``sd_const``);
    ``r``: the learned input range as a tensor, for its gradient, or None."""
    ext = cpp.load()
    r_val = 0.0 if r is None else float(r.detach())
    head = (x, layer.weight, layer.gdc, layer.out_gain, layer.bias, r, mean_tab, sd_tab, st.T, st.R, st.noise_scale,
            st.sd_const)
    tail = (st.dac, st.bound, st.lsb, st.out_sd, st.quant, seed)
    if conv:
        return ext.hat_conv(*head, st.pads, st.stride, st.dilation, r_val, *tail)
    return ext.hat_linear(*head, r_val, *tail)
