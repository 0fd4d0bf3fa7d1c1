"""Whole-model entry points: ``convert``, ``program``, ``drift``, ``compensate``.

Example:
    >>> import torch, aimc
    >>> net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> analog = aimc.convert(net, "pcm-hermes")
    >>> aimc.program(analog, seed=1)
    >>> aimc.drift(analog, t_s=86400.0)
    >>> aimc.compensate(analog)
    >>> analog(torch.randn(4, 8)).shape
    torch.Size([4, 2])
"""
from __future__ import annotations

import copy
import warnings
from typing import Callable, Iterator

import torch
from torch import nn

from aimc.chips import ChipSpec, load
from aimc.nn.base import AnalogLayerMixin, check_time_s
from aimc.nn.layers import AnalogConv1d, AnalogConv2d, AnalogLinear

__all__ = ["CONVERSIONS", "convert", "program", "drift", "compensate", "analog_layers"]

#: The public conversion table: digital layer type -> analog layer type.
CONVERSIONS: dict[type[nn.Module], type[AnalogLayerMixin]] = {
    nn.Linear: AnalogLinear,
    nn.Conv1d: AnalogConv1d,
    nn.Conv2d: AnalogConv2d,
}


def analog_layers(model: nn.Module) -> Iterator[tuple[str, AnalogLayerMixin]]:
    """``(name, layer)`` for every analog layer of ``model``, in module order."""
    for name, m in model.named_modules():
        if isinstance(m, AnalogLayerMixin):
            yield name, m


def convert(
    model: nn.Module,
    chip: ChipSpec | str,
    *,
    filter: Callable[[str, nn.Module], bool] | None = None,
) -> nn.Module:
    """Return a copy of ``model`` whose Linear/Conv layers run on ``chip``'s tiles.

    Args:
        model: any ``nn.Module``; it is not modified.
        chip: preset name, YAML path or :class:`ChipSpec`.
        filter: ``filter(qualified_name, module) -> bool``; layers for which it returns
            False stay digital. Grouped convolutions always stay digital (with a warning).
    """
    chip = load(chip)
    new = copy.deepcopy(model)
    if type(new) in CONVERSIONS:
        return CONVERSIONS[type(new)].from_digital(new, chip)

    def visit(parent: nn.Module, prefix: str) -> None:
        for name, child in parent.named_children():
            qual = f"{prefix}{name}"
            target = CONVERSIONS.get(type(child))
            if target is not None and (filter is None or filter(qual, child)):
                if getattr(child, "groups", 1) != 1:
                    warnings.warn(f"convert: {qual} ({type(child).__name__}, groups={child.groups}) stays digital")
                    continue
                setattr(parent, name, target.from_digital(child, chip))
            else:
                visit(child, qual + ".")

    visit(new, "")
    return new


def _layers_or_error(model: nn.Module, what: str) -> list[AnalogLayerMixin]:
    layers = [m for _, m in analog_layers(model)]
    if not layers:
        raise ValueError(f"{what}: the model has no analog layers; call aimc.convert(model, chip) first")
    return layers


def program(model: nn.Module, seed: int = 0) -> None:
    """Program every analog layer (draw programming noise once); same seed, same chip."""
    layers = _layers_or_error(model, "program")
    device = next(iter(layers)).weight.device
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    for layer in layers:
        if device.type == "cpu":
            layer.program_analog(gen)
        else:  # device draws from a device generator seeded from the CPU stream
            dgen = torch.Generator(device=layer.weight.device)
            dgen.manual_seed(int(torch.randint(0, 2**62, (1,), generator=gen)))
            layer.program_analog(dgen)


def drift(model: nn.Module, t_s: float) -> None:
    """Set the time since programming of every analog layer (seconds, finite, >= 0).

    Raises:
        TypeError: ``t_s`` is not a number; ValueError: negative, infinite or NaN.
    """
    t_s = check_time_s(t_s)  # before any layer changes
    for layer in _layers_or_error(model, "drift"):
        layer.set_time(t_s)


def compensate(model: nn.Module, enable: bool = True) -> None:
    """Global drift compensation of every analog layer at its current time."""
    for layer in _layers_or_error(model, "compensate"):
        layer.compensate_drift(enable)
