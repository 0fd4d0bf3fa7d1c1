"""Hardware-aware training (HAT): train a converted model so that it survives the chip.

While a layer is in ``training`` mode, :class:`HATForward` replaces its tile read with a
differentiable model of the same MVM (Joshi et al., Nat. Commun. 2020; Rasch et al.,
Nat. Commun. 14, 5282 (2023)):

* weights per tile column are scaled to ``[-1, 1]`` as on the chip and get additive
  Gaussian noise of the chip's device at ``t_eval_s`` after programming, with drift
  compensated globally: per device ``var = sigma_prog(g)^2 + (g ln(t/t0) sigma_nu(g))^2
  + sigma_read(g, t)^2`` (drift spread linearised: ``Var[(t/t0)^-nu] ≈ (ln(t/t0) sigma_nu)^2``
  after the mean factor is removed by GDC), for G+ and G- of each weight, in units of
  ``g_max - g_min``; one draw per weight per forward pass; ``noise_scale`` multiplies it;
* optional clipping of each output channel's weights at ``clip_sigma`` standard deviations;
* inputs through the chip's DAC and each tile's partial sums through its ADC (noise
  management by abs-max, saturation at the ADC bound), with additive output noise;
  rounding passes gradients straight through (:func:`ste_round`), clamping passes them
  inside the range and blocks them outside (the clipped straight-through estimator).

Example:
    >>> import torch, aimc
    >>> from aimc.train.hat import HATConfig, enable_hat
    >>> net = aimc.convert(torch.nn.Linear(8, 2), "pcm-hermes")
    >>> enable_hat(net, HATConfig(), seed=0)
    >>> net.train()(torch.randn(4, 8)).sum().backward()
    >>> net.weight.grad.shape
    torch.Size([2, 8])
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from typing import Literal

from pydantic import Field
from torch import nn

from aimc.config import BaseConfig
from aimc.nn.convert import analog_layers
from aimc.physics.periphery import max_code

__all__ = ["HATConfig", "HAT_PRESETS", "HATForward", "enable_hat", "ste_round", "device_weight_std", "clip_channels_"]


class HATConfig(BaseConfig):
    """Settings of hardware-aware training.

    Attributes:
        weight_noise: ``device``: the chip's device statistics at ``t_eval_s`` (module doc),
            times ``noise_scale``; ``gaussian_channel``: additive Gaussian noise of std
            ``noise_scale`` times each output channel's largest |weight| (aihwkit
            ``ADD_NORMAL_PER_CHANNEL``, used for IBM's Analog Foundation Models).
        noise_scale: multiplier of the weight noise (0: quantisation only).
        t_eval_s: time after programming whose device statistics are trained for.
        clip_sigma: after every step, clip each output channel's stored weights at this
            many of its standard deviations (None: no clipping).
        quantize_io: train through the chip's DAC/ADC quantisation and output noise.
        input_range: ``dynamic``: the chip's own input scaling (per-vector abs-max);
            ``learned``: a static per-layer DAC full scale ``r``, set from the first
            training batch's abs-max and learned (gradient of the clipped inputs, plus
            ``input_range_decay * r`` while more than ``input_min_fraction`` of inputs are
            inside the range, as aihwkit's ``InputRangeParameter``); the chip then uses it.
        learn_out_scales: train each analog layer's per-column digital ``out_gain``.
    """

    weight_noise: Literal["device", "gaussian_channel"] = "device"
    noise_scale: float = Field(1.0, ge=0.0, le=100.0)
    t_eval_s: float = Field(86_400.0, ge=0.0)
    clip_sigma: float | None = Field(None, gt=0.0)
    quantize_io: bool = True
    input_range: Literal["dynamic", "learned"] = "dynamic"
    input_range_decay: float = Field(0.01, ge=0.0, le=1.0)
    input_min_fraction: float = Field(0.95, ge=0.0, le=1.0)
    learn_out_scales: bool = False


#: Named settings. ``afm``: IBM's Analog Foundation Models (Büchel et al., arXiv:2505.09663
#: (2025); training config of github.com/IBM/analog-foundation-models): per-channel Gaussian
#: weight noise of 3 % of the channel's abs-max, per-channel clipping at 2.5 sigma, static
#: learned 8-bit input ranges (decay 0.01, 95 %) and the chip's 8-bit ADC (AFM: 254
#: levels, out_bound 14; here the chip's own bound), no output noise beyond the chip's.
HAT_PRESETS: dict[str, HATConfig] = {
    "default": HATConfig(),
    "afm": HATConfig(weight_noise="gaussian_channel", noise_scale=0.03, clip_sigma=2.5,
                     input_range="learned", input_range_decay=0.01, input_min_fraction=0.95),
}


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """``round(x)`` forward, identity gradient (straight-through estimator)."""
    return x + (torch.round(x) - x).detach()


def device_weight_std(wn: torch.Tensor, device, t_s: float) -> torch.Tensor:
    """Std of a normalised weight ``wn`` in [-1, 1] stored as G+ - G- (module doc)."""
    dg = device.g_max_uS - device.g_min_uS
    g_pos = device.g_min_uS + wn.clamp(min=0) * dg
    g_neg = device.g_min_uS + (-wn).clamp(min=0) * dg

    def var(g):
        v = torch.zeros_like(g)
        if hasattr(device, "prog_noise_std_uS"):
            v = v + device.prog_noise_std_uS(g) ** 2
        if hasattr(device, "drift_mean_std") and t_s > device.t0_s:
            _, sd = device.drift_mean_std(g)
            v = v + (g * math.log(t_s / device.t0_s) * sd * device.drift_scale) ** 2
        rs = device.read_noise_std_uS(g, t_s)
        return v if rs is None else v + rs**2

    return (var(g_pos) + var(g_neg)).sqrt() / dg


class _AddGrad(torch.autograd.Function):
    """Identity forward; adds ``extra`` to the gradient (a decay term on a parameter)."""

    @staticmethod
    def forward(ctx, r, extra):
        ctx.save_for_backward(extra)
        return r.view_as(r)

    @staticmethod
    def backward(ctx, grad):
        (extra,) = ctx.saved_tensors
        return grad + extra, None


@torch.no_grad()
def clip_channels_(weight: torch.Tensor, sigma: float) -> None:
    """In place: clip each output channel (dim 0) of ``weight`` at ``sigma`` of its std."""
    flat = weight.view(weight.shape[0], -1)
    lim = sigma * flat.std(dim=1, keepdim=True)
    flat.clamp_(-lim, lim)


class HATForward:
    """The differentiable training-time read of an analog layer (see module doc)."""

    def __init__(self, cfg: HATConfig, generator: torch.Generator):
        self.cfg = cfg
        self.generator = generator

    def _randn(self, shape, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=like.device, dtype=like.dtype)

    def _input_scale(self, layer, x: torch.Tensor) -> torch.Tensor:
        """The DAC full scale: (B, 1) per-vector abs-max, or the learned range (differentiable)."""
        cfg = self.cfg
        if cfg.input_range == "dynamic":
            return x.detach().abs().amax(dim=1, keepdim=True).clamp(min=1e-12)
        r = layer.input_range
        if float(r.detach()) <= 0:  # first batch: start from its abs-max
            with torch.no_grad():
                r.fill_(float(x.abs().max().clamp(min=1e-6)))
        if cfg.input_range_decay > 0:
            inside = float((x.detach().abs() <= r.detach()).float().mean())
            if inside > cfg.input_min_fraction:
                r = _AddGrad.apply(r, cfg.input_range_decay * r.detach())
        return r

    def __call__(self, layer, x: torch.Tensor) -> torch.Tensor:
        cfg, chip = self.cfg, layer.chip
        lay = layer.layout
        if cfg.clip_sigma is not None:
            clip_channels_(layer.weight, cfg.clip_sigma)
        w = layer.analog_weight()  # (out, in)
        pad = lay.t_in * lay.rows - lay.in_features
        wt = F.pad(w, (0, pad)).view(lay.out_features, lay.t_in, lay.rows).transpose(0, 1)  # (T, out, R)
        scale = wt.detach().abs().amax(dim=2, keepdim=True).clamp(min=1e-12)  # (T, out, 1)
        wn = wt / scale
        if cfg.noise_scale > 0:
            if cfg.weight_noise == "device":
                sd = cfg.noise_scale * device_weight_std(wn.detach(), chip.device, cfg.t_eval_s)
            else:  # relative to each channel's abs-max, which is 1 in every tile column
                sd = cfg.noise_scale
            wn = wn + sd * self._randn(wn.shape, wn)
        amax = self._input_scale(layer, x)
        xn = torch.clamp(x / amax, -1.0, 1.0)
        dac = max_code(chip.dac.bits) if cfg.quantize_io else None
        if dac is not None:
            xn = ste_round(xn * dac) / dac
        xt = F.pad(xn, (0, pad)).view(-1, lay.t_in, lay.rows).transpose(0, 1)  # (T, B, R)
        y = torch.bmm(xt, wn.transpose(1, 2))  # (T, B, out), device units
        if cfg.quantize_io:
            if chip.noise.out_noise > 0:
                y = y + chip.noise.out_noise * self._randn(y.shape, y)
            adc = max_code(chip.adc.bits)
            if adc is not None:
                lsb = chip.adc.bound / adc
                y = ste_round(y.clamp(-chip.adc.bound, chip.adc.bound) / lsb) * lsb
        return (y * scale.transpose(1, 2)).sum(dim=0) * amax


def enable_hat(model: nn.Module, cfg: HATConfig | str | None, seed: int = 0) -> None:
    """Install (or, with ``cfg=None``, remove) the HAT read on every analog layer.

    ``cfg`` may name a preset of :data:`HAT_PRESETS`. Marks ``input_range`` and
    ``out_gain`` trainable as the config asks (so an optimizer built afterwards sees them).
    """
    layers = [m for _, m in analog_layers(model)]
    if not layers:
        raise ValueError("enable_hat: the model has no analog layers; call aimc.convert(model, chip) first")
    if isinstance(cfg, str):
        if cfg not in HAT_PRESETS:
            raise ValueError(f"unknown HAT preset {cfg!r}; allowed: {', '.join(HAT_PRESETS)}")
        cfg = HAT_PRESETS[cfg]
    gen = torch.Generator(device=layers[0].weight.device).manual_seed(int(seed))
    for layer in layers:
        layer.train_forward = None if cfg is None else HATForward(cfg, gen)
        layer.input_range.requires_grad_(cfg is not None and cfg.input_range == "learned")
        layer.out_gain.requires_grad_(cfg is not None and cfg.learn_out_scales)
