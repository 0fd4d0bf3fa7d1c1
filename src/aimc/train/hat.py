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
from pydantic import Field
from torch import nn

from aimc.config import BaseConfig
from aimc.nn.convert import analog_layers
from aimc.physics.periphery import max_code

__all__ = ["HATConfig", "HATForward", "enable_hat", "ste_round", "device_weight_std"]


class HATConfig(BaseConfig):
    """Settings of hardware-aware training.

    Attributes:
        noise_scale: multiplies the device weight noise (0: quantisation only).
        t_eval_s: time after programming whose noise statistics are trained for.
        clip_sigma: clip each output channel at this many standard deviations (None: no clip).
        quantize_io: train through the chip's DAC/ADC quantisation and output noise.
    """

    noise_scale: float = Field(1.0, ge=0.0, le=100.0)
    t_eval_s: float = Field(86_400.0, ge=0.0)
    clip_sigma: float | None = Field(None, gt=0.0)
    quantize_io: bool = True


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


class HATForward:
    """The differentiable training-time read of an analog layer (see module doc)."""

    def __init__(self, cfg: HATConfig, generator: torch.Generator):
        self.cfg = cfg
        self.generator = generator

    def _randn(self, shape, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=like.device, dtype=like.dtype)

    def __call__(self, layer, x: torch.Tensor) -> torch.Tensor:
        cfg, chip = self.cfg, layer.chip
        lay = layer.layout
        w = layer.analog_weight()  # (out, in)
        if cfg.clip_sigma is not None:
            lim = cfg.clip_sigma * w.detach().std(dim=1, keepdim=True)
            w = torch.clamp(w, -lim, lim)
        pad = lay.t_in * lay.rows - lay.in_features
        wt = F.pad(w, (0, pad)).view(lay.out_features, lay.t_in, lay.rows).transpose(0, 1)  # (T, out, R)
        scale = wt.detach().abs().amax(dim=2, keepdim=True).clamp(min=1e-12)  # (T, out, 1)
        wn = wt / scale
        if cfg.noise_scale > 0:
            sd = device_weight_std(wn.detach(), chip.device, cfg.t_eval_s)
            wn = wn + cfg.noise_scale * sd * self._randn(wn.shape, wn)
        amax = x.detach().abs().amax(dim=1, keepdim=True).clamp(min=1e-12)  # noise management
        xn = (x / amax).clamp(-1.0, 1.0)
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


def enable_hat(model: nn.Module, cfg: HATConfig | None, seed: int = 0) -> None:
    """Install (or, with ``cfg=None``, remove) the HAT read on every analog layer."""
    layers = [m for _, m in analog_layers(model)]
    if not layers:
        raise ValueError("enable_hat: the model has no analog layers; call aimc.convert(model, chip) first")
    gen = torch.Generator(device=layers[0].weight.device).manual_seed(int(seed))
    for layer in layers:
        layer.train_forward = None if cfg is None else HATForward(cfg, gen)
