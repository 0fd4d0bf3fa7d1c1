"""Vectorised Monte Carlo over programmed chips, and its benchmark (``aimc bench mc``).

:func:`chip_accuracies` measures the test accuracy of many programmed chips of one
converted model: the chips are programmed, drifted, compensated and read together by
:class:`aimc.nn.montecarlo.ChipBatch` (one batched pass per batch of images), at most
``chips_per_pass`` at a time, so memory stays bounded however many chips are asked for.
Chip ``c`` has the conductances of ``aimc.program(model, seed=seeds[c])``.

:func:`bench_mc` times that for 100 chips of the demo CNN (digits, ``pcm-hermes``, one
day after programming, with global drift compensation) against the same for one chip on
the single-chip path (``aimc.program``, ``aimc.drift``, ``aimc.compensate``, accuracy),
both the best of ``repeats`` interleaved runs (machine load hits both alike).

Example:
    >>> import torch, aimc
    >>> net = aimc.convert(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)), "pcm-hermes")
    >>> x, y = torch.randn(6, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    >>> acc = chip_accuracies(net, x, y, seeds=[0, 1, 2, 3], t_s=3600.0, chips_per_pass=3)
    >>> acc.shape
    torch.Size([4])
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence, cast

import torch
from torch import nn

import aimc
from aimc.nn.montecarlo import ChipBatch
from aimc.train.digital import accuracy, train_digital
from aimc.workloads.data import load_dataset
from aimc.workloads.recipes import RECIPES

__all__ = ["chip_accuracies", "bench_mc", "DEFAULT_CHIPS_PER_PASS"]

#: Chips read in one batched pass by default (a fixed number, not the machine's memory,
#: so the same seeds give the same table on every machine). 100 chips of the digits CNN
#: in batches of 128 images take about 0.3 GB.
DEFAULT_CHIPS_PER_PASS = 100


def chip_accuracies(analog: nn.Module, x: torch.Tensor, y: torch.Tensor, seeds: Sequence[int], t_s: float,
                    gdc: bool = True, batch_size: int = 128,
                    chips_per_pass: int = DEFAULT_CHIPS_PER_PASS) -> torch.Tensor:
    """Test accuracy (len(seeds),) of the chips programmed with ``seeds``, ``t_s`` seconds
    after programming, with global drift compensation if ``gdc``.

    Raises:
        ValueError: no seeds, ``chips_per_pass`` or ``batch_size`` < 1.
    """
    if chips_per_pass < 1 or batch_size < 1:
        raise ValueError(f"chips_per_pass and batch_size must be >= 1, got {chips_per_pass}, {batch_size}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("chip_accuracies: give at least one seed")
    out = []
    for i in range(0, len(seeds), chips_per_pass):
        chips = ChipBatch(analog, seeds[i: i + chips_per_pass])
        chips.drift(t_s)
        if gdc:
            chips.compensate()
        out.append(chips.accuracy(x, y, batch_size=batch_size))
    return torch.cat(out)


def _one_chip(analog: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int, t_s: float) -> float:
    aimc.program(analog, seed=seed)
    aimc.drift(analog, t_s)
    aimc.compensate(analog)
    return accuracy(analog, x, y, batch_size=128)


def bench_mc(chips: int = 100, chip: str = "pcm-hermes", t_s: float = 86400.0, repeats: int = 3,
             epochs: int = 5, progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Time ``chips`` Monte Carlo chips of the demo CNN against one chip (module doc).

    Args:
        chips: chips in the batched run (seeds 0 .. chips-1), >= 1.
        chip: chip preset name or YAML file.
        t_s: time since programming, seconds.
        repeats: interleaved timed runs of each (the best is reported), >= 1.
        epochs: digital training epochs of the CNN before it is converted.
        progress: optional ``progress(advance, total, description)`` hook.

    Returns:
        ``chips``, ``ms`` (program, drift, compensate and test all chips), ``ms_one_chip``
        (the same for one chip on the single-chip path), ``ratio`` (``ms / ms_one_chip``),
        ``accuracy_mean``/``accuracy_std`` over the chips, ``accuracy_one_chip``, ``chip``,
        ``t_s``, ``n_test``, ``repeats``, ``torch_threads``.
    """
    if chips < 1 or repeats < 1:
        raise ValueError(f"chips and repeats must be >= 1, got {chips}, {repeats}")
    spec = aimc.chips.load(chip)
    report = progress or (lambda a, t, d: None)
    total = 1 + 2 * repeats
    report(0, total, "training the CNN")
    recipe = RECIPES["digits"]
    x_tr, y_tr, x_te, y_te = load_dataset("digits", seed=0)
    model = recipe["model"](seed=0)
    train_digital(model, x_tr, y_tr, epochs=epochs, lr=recipe["lr"], batch_size=recipe["batch_size"], seed=0)
    analog = cast(nn.Module, aimc.convert(model, spec))
    _one_chip(analog, x_te[:8], y_te[:8], 0, t_s)  # warm-up: kernels built, caches filled
    chip_accuracies(analog, x_te[:8], y_te[:8], [0, 1], t_s)
    report(1, total, "timing")
    one, many = [], []
    acc_one, accs = 0.0, torch.zeros(chips)
    for _ in range(repeats):
        t0 = time.perf_counter()
        acc_one = _one_chip(analog, x_te, y_te, 0, t_s)
        one.append(time.perf_counter() - t0)
        report(1, total, "one chip")
        t0 = time.perf_counter()
        accs = chip_accuracies(analog, x_te, y_te, range(chips), t_s)
        many.append(time.perf_counter() - t0)
        report(1, total, f"{chips} chips")
    ms, ms_one = 1e3 * min(many), 1e3 * min(one)
    return dict(chips=int(chips), ms=round(ms, 2), ms_one_chip=round(ms_one, 2), ratio=round(ms / ms_one, 3),
                accuracy_mean=float(accs.mean()), accuracy_std=float(accs.std()) if chips > 1 else 0.0,
                accuracy_one_chip=acc_one, chip=spec.name, t_s=float(t_s), n_test=len(x_te), repeats=int(repeats),
                torch_threads=torch.get_num_threads())
