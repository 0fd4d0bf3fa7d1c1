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
from aimc.tiles import Periphery, ir_drop_active

__all__ = ["Static", "supports", "usable", "clean_weights", "ir_drop_fast", "ir_drop_delta", "read"]


class Static(NamedTuple):
    """The settings of a layer's fused read that do not change between passes, taken from
    the tiles' geometry (:class:`~aimc.tiles.TileLayout`) and periphery
    (:class:`~aimc.tiles.Periphery`): :meth:`of`."""

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
    r_static: float = 0.0                # fixed DAC full scale (dac.noise_management "none"), 0: abs-max
    ir: tuple = ()                       # IR drop in the kernel (ir_drop_delta's settings), (): none

    @classmethod
    def of(cls, layer, cfg, conv: bool) -> "Static":
        """The settings of ``layer``'s read under the HAT config ``cfg``."""
        lay, per = layer.layout, Periphery.of(layer.chip)
        geometry = {}
        if conv:
            geometry = dict(pads=tuple(layer._reversed_padding_repeated_twice), stride=tuple(layer.stride),
                            dilation=tuple(layer.dilation))
        return cls(T=lay.t_in, R=lay.rows_used, noise_scale=float(cfg.noise_scale),
                   sd_const=1.0, dac=-1 if per.dac_max is None else int(per.dac_max), bound=per.adc_bound,
                   lsb=per.adc_lsb or 0.0, out_sd=per.out_noise if cfg.out_noise is None else cfg.out_noise, quant=bool(cfg.quantize_io),
                   r_static=0.0 if per.abs_max else per.dac_bound, ir=_ir_settings(layer), **geometry)


def supports(chip, cfg) -> bool:
    """True when the fused kernels implement every feature of ``chip``'s read that HAT
    models: one slice per weight, per-column weight scaling, no bound management, and
    no device that both rounds to levels and drifts (those run on the PyTorch read of
    :mod:`aimc.train.hat`, which rounds before the drift)."""
    per = Periphery.of(chip)
    levels_then_drift = getattr(chip.device, "n_levels", None) is not None and hasattr(chip.device, "drift_mean_std")
    return (chip.mapping.slices == 1 and chip.mapping.weight_scaling == "per_column"
            and not (per.bound_management and cfg.quantize_io) and not levels_then_drift)


def usable(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """True when the fused read applies to these tensors (else use the PyTorch path)."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32
            and x.numel() > 0 and cpp.load() is not None)


def clean_weights(layer, st: Static, mean_tab: torch.Tensor | None) -> torch.Tensor:
    """The noise-free normalised tile weights ``(T, out, R)`` of the kernels' weight side
    (scaled per tile column, expected drift and its compensation), differentiable in
    ``layer.weight`` through the kernels' own derivative."""
    w = layer.analog_weight()
    wn, _, dfac = cpp.load().hat_weights(w.detach().contiguous(), st.T, st.R, mean_tab, None, 0.0, 1.0, 0)
    lay = layer.layout
    wt = lay.split_in(w)  # (T, out, R)
    return wn + (wt - wt.detach()) * dfac


def ir_drop_fast(chip) -> bool:
    """True when :func:`ir_drop_delta` computes ``chip``'s IR-drop correction: a
    ``first_order`` model and no programming levels (those round before IR drop, in PyTorch)."""
    return (ir_drop_active(chip) and chip.ir_drop.mode == "first_order"
            and getattr(chip.device, "n_levels", None) is None)


def _ir_settings(layer) -> tuple:
    """``(r_uS, g_min_uS, dg_uS, rows, width)`` of :mod:`aimc.cpp.hat_irdrop` for ``layer``
    (``r_uS = 1e-6 r_wire_ohm``; ``width``: weight columns per tile, or ``out_features``
    when one tile holds them all, as unused trailing columns carry no current), or ``()``
    where :func:`ir_drop_fast` does not hold."""
    chip, lay = layer.chip, layer.layout
    if not ir_drop_fast(chip):
        return ()
    dev = chip.device
    width = lay.cols_w if lay.t_out > 1 else lay.out_features
    return (1e-6 * chip.ir_drop.r_wire_ohm, dev.g_min_uS, dev.g_max_uS - dev.g_min_uS, lay.rows, width)


def ir_drop_delta(layer, st: Static, mean_tab: torch.Tensor | None) -> torch.Tensor:
    """The first-order IR-drop correction ``(out, in)`` of ``layer``'s noise-free weights in
    one C++ call (:mod:`aimc.cpp.hat_irdrop`): the same as
    ``effective_weights(wc) - wc`` (:func:`aimc.tiles.irdrop.effective_weights`) at
    ``wc = clean_weights(layer, st, mean_tab)``, laid out as the weight, without the ~20
    small tensor operations of that route: the constant ``delta`` of :func:`read`
    (gradients pass straight through it). Needs ``st.ir`` (:func:`ir_drop_fast`)."""
    if not st.ir:
        raise ValueError("ir_drop_delta: the layer's chip has no first-order IR drop without levels (Static.ir is empty)")
    return cpp.load().hat_irdrop_delta(layer.analog_weight().detach().contiguous(), st.T, st.R, mean_tab, *st.ir)


def read(layer, x: torch.Tensor, st: Static, mean_tab: torch.Tensor | None, sd_tab: torch.Tensor | None, seed: int,
         r: torch.Tensor | None, conv: bool, delta: torch.Tensor | None = None) -> torch.Tensor:
    """The whole training read of ``layer`` (gain and bias included): (B, in) -> (B, out) for
    a linear layer, (B, C, *sp) -> (B, out, *osp) for a 1-d or 2-d convolution (``x``
    contiguous or channels-last; the output keeps oneDNN's layout). ``mean_tab``/``sd_tab``:
    the device tables at this pass's time (None: no drift / constant ``sd_const``);
    ``r``: the learned input range as a tensor, for its gradient, or None (then the static
    ``st.r_static``, or per-vector abs-max); ``delta``: an additive correction (out, in) of
    the normalised weights (IR drop), differentiable, or None. With ``st.ir`` the kernels add
    the first-order IR-drop correction of :func:`ir_drop_delta` to the clean weights
    themselves (no ``delta`` needed)."""
    ext = cpp.load()
    r_val = st.r_static if r is None else float(r.detach())
    head = (x, layer.weight, layer.gdc, layer.out_gain, layer.bias, r, delta, mean_tab, sd_tab, st.T, st.R,
            st.noise_scale, st.sd_const)
    tail = (st.dac, st.bound, st.lsb, st.out_sd, st.quant, seed, list(st.ir))
    if conv:
        return ext.hat_conv(*head, st.pads, st.stride, st.dilation, r_val, *tail)
    return ext.hat_linear(*head, r_val, *tail)
