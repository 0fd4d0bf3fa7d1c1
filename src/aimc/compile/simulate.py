"""Run an assignment in the simulator: analog layers converted, programmed, drifted and
compensated on the chip, digital layers exact.

Used by the ``sensitivity`` policy (one layer analog at a time, then whole assignments)
and by ``aimc run`` (a plan over seeds and drift times). Each seed is one chip: its
programming noise is drawn with that seed (:func:`aimc.nn.program`); reads draw their own
noise from a stream seeded by the programming seed and the time.

Example:
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> x, y = torch.randn(32, 4), torch.zeros(32, dtype=torch.long)
    >>> accs = evaluate(net, "ideal", {"0", "2"}, x, y, seeds=[0], times_s=[86400.0])
    >>> accs[0][0] == float((net(x).argmax(1) == y).float().mean())   # ideal chip = exact
    True
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from aimc.chips import ChipSpec
from aimc.nn.convert import compensate, convert, drift, program
from aimc.train.digital import accuracy

__all__ = ["Calibration", "analog_filter", "evaluate", "on_chip"]


@dataclass
class Calibration:
    """What the ``sensitivity`` policy measures on: the digital ``model`` and labelled
    calibration data ``x``, ``y`` (named ``data`` in the plan)."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    data: str = "calibration"


def analog_filter(analog: set[str]):
    """``convert``'s filter for an assignment: a module runs analog when its name is
    assigned analog, or when it holds assigned sub-matrices (a recurrent layer's
    ``name.l0.ih``: its matrices are converted together)."""
    def keep(name: str, module: nn.Module) -> bool:
        return name in analog or any(a.startswith(name + ".") for a in analog)

    return keep


def on_chip(model: nn.Module, chip: ChipSpec | str, analog: set[str]) -> nn.Module:
    """A copy of ``model`` whose layers named in ``analog`` run on ``chip``'s tiles."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # layers outside the assignment stay digital on purpose
        return convert(model, chip, filter=analog_filter(analog))


def evaluate(model: nn.Module, chip: ChipSpec | str, analog: set[str], x: torch.Tensor, y: torch.Tensor,
             seeds: Sequence[int], times_s: Sequence[float], compensated: bool = True) -> list[list[float]]:
    """Accuracy of ``model`` with the layers named in ``analog`` on ``chip``.

    Args:
        model: the digital model (not modified).
        chip: the chip of the analog layers.
        analog: names (module paths) of the layers that run analog; empty: all digital.
        x, y: labelled data.
        seeds: one chip per seed (programming noise).
        times_s: times since programming, seconds.
        compensated: apply global drift compensation at each time.

    Returns:
        ``[time][seed]`` top-1 accuracies in [0, 1]; without analog layers, the exact
        accuracy repeated.
    """
    if not analog:
        acc = accuracy(model, x, y)
        return [[acc] * len(seeds) for _ in times_s]
    sim = on_chip(model, chip, analog).eval()
    out = [[0.0] * len(seeds) for _ in times_s]
    for k, seed in enumerate(seeds):
        program(sim, seed=int(seed))
        for i, t in enumerate(times_s):
            drift(sim, float(t))
            compensate(sim, enable=compensated)
            out[i][k] = accuracy(sim, x, y, batch_size=256)
    return out
