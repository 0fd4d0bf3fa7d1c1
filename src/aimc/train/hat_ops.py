"""Pure pieces of hardware-aware training (:mod:`aimc.train.hat`): straight-through
estimators, the device statistics HAT trains against, the chip check and the pass clock.

Example:
    >>> import torch
    >>> from aimc.train.hat_ops import ste_round
    >>> x = torch.tensor([0.4, 1.6], requires_grad=True)
    >>> ste_round(x).sum().backward(); x.grad.tolist()
    [1.0, 1.0]
"""
from __future__ import annotations

import math

import torch
from torch import nn

from aimc.physics.devices import DeviceState

__all__ = ["ste_round", "device_weight_std", "expected_drifted_weight", "clip_channels_", "check_chip"]


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
        # read noise of a device programmed to g whose mean drift GDC has undone: the
        # programmed state and the conductance read are both g (Q_s from the programmed state)
        rs = device.read_noise_std_uS(DeviceState(g, torch.zeros_like(g)), t_s, g)
        return v if rs is None else v + rs**2

    return (var(g_pos) + var(g_neg)).sqrt() / dg


def expected_drifted_weight(wn: torch.Tensor, device, t_s: float) -> torch.Tensor:
    """Expected weight at ``t_s`` of a normalised weight ``wn`` >= 0 stored as G+ - G-,
    before compensation (module doc): ``(E[g+(t)] - E[g-(t)]) / (g_max - g_min)``."""
    dg = device.g_max_uS - device.g_min_uS
    L = math.log(t_s / device.t0_s) if t_s > device.t0_s else 0.0

    def mean(g):
        mu, sd = device.drift_mean_std(g)
        mu, sd = mu * device.drift_scale, sd * device.drift_scale
        return g * torch.exp(-mu * L + 0.5 * (sd * L) ** 2)

    g_pos = device.g_min_uS + wn.clamp(min=0) * dg
    g_min = torch.full_like(wn, device.g_min_uS)
    return (mean(g_pos) - mean(g_min)) / dg


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


class _ADCSTE(torch.autograd.Function):
    """ADC of partial sums in device units: ``round(clamp(y, ±bound) / lsb) * lsb`` with
    the clipped straight-through gradient (passes inside the bound, blocked outside)."""

    @staticmethod
    def forward(ctx, y, bound: float, lsb: float):
        ctx.save_for_backward(y.abs() <= bound)
        return y.clamp(-bound, bound).div_(lsb).round_().mul_(lsb)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None


def check_chip(chip) -> None:
    """Raise ValueError naming the chip field whose read HAT cannot train through.

    Every other field of :class:`~aimc.chips.ChipSpec` is read as the chip reads it
    (``tests/train/test_hat_chip_fields.py`` holds each to the inference read). Refused:
    ``ir_drop.mode: exact`` (a sparse nodal solve per tile, not differentiable; train with
    ``first_order``, which tracks it to second order in the wire resistance).
    """
    if chip.ir_drop.mode == "exact" and chip.ir_drop.r_wire_ohm > 0.0:
        raise ValueError(f"HAT: chip {chip.name!r} has ir_drop.mode='exact', which training cannot read through "
                         "(a nodal solve per tile, not differentiable); train on a copy with "
                         "ir_drop.mode='first_order'")


class _PassClock:
    """The training-time grid point of the current forward pass, shared by a model's HAT
    reads (a forward pre-hook on the model that :func:`aimc.train.hat.enable_hat` was given)."""

    def __init__(self, generator: torch.Generator, time_points: int):
        self.generator, self.time_points = generator, time_points
        self.k: int | None = None
        self._pool: list[int] = []

    def __call__(self, module: nn.Module, args) -> None:
        if module.training:
            if not self._pool:  # 64 passes per generator call
                self._pool = torch.randint(0, self.time_points, (64,), generator=self.generator,
                                           device=self.generator.device).tolist()[::-1]
            self.k = self._pool.pop()
