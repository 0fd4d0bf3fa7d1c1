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
from typing import Any, Callable, Sequence

import torch
from torch import nn

import aimc
from aimc.nn.montecarlo import ChipBatch
from aimc.train.digital import accuracy, train_digital
from aimc.workloads.data import load_dataset
from aimc.workloads.recipes import RECIPES

__all__ = ["chip_metrics", "chip_accuracies", "bench_mc", "DEFAULT_CHIPS_PER_PASS", "DEFAULT_BATCH_SIZE"]

#: Chips read in one batched pass by default: a fixed number, not the machine's memory, so
#: the same seeds give the same table on every machine. 32 chips x 128 images of the
#: digits CNN keep a pass's activations near the caches' size: 100 chips of it took
#: 2.8-3.3 s in passes of 16-32 chips against 3.7-5.1 s in one pass of 100 (one thread,
#: 2-core machine at load 10, interleaved runs).
DEFAULT_CHIPS_PER_PASS = 32

#: Images per batch of a pass by default: 32 chips x 32 images = 1,024 chip-images, whose
#: activations (the first convolution's output of the digits CNN: 4.2 MB) stay in the
#: caches between layers. 100 chips of the digits CNN, best of 5 interleaved runs (one
#: thread, shared 2-core machine under load): 427 ms in passes of 32 chips x 128 images,
#: 345-371 ms for 32 x 32, 64 x 16, 50 x 20 and 100 x 10 (the ReLU and pooling after the
#: first convolution went from 42 + 16 ms to 9 + 16 ms).
DEFAULT_BATCH_SIZE = 32


def _exact(layer: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """The digital result of an analog layer's matrix product on ``x`` (None: not a
    plain linear or convolution layer)."""
    if isinstance(layer, nn.Linear):
        return nn.functional.linear(x, layer.weight, layer.bias)
    if isinstance(layer, nn.modules.conv._ConvNd) and not isinstance(layer, nn.modules.conv._ConvTransposeNd):
        return layer._conv_forward(x, layer.weight, layer.bias)
    return None


def chip_metrics(analog: nn.Module, x: torch.Tensor, y: torch.Tensor, seeds: Sequence[int], t_s: float,
                 gdc: bool = True, batch_size: int = DEFAULT_BATCH_SIZE, chips_per_pass: int = DEFAULT_CHIPS_PER_PASS,
                 mvm_error: bool = False) -> dict[str, torch.Tensor]:
    """Per-chip metrics (each ``(len(seeds),)``) of the chips programmed with ``seeds``,
    ``t_s`` seconds after programming, with global drift compensation if ``gdc``:

    * ``accuracy``: top-1 test accuracy in [0, 1];
    * ``mvm_error`` (if asked): the relative error of the analog layers' outputs on the
      test set, ``||y_chip - y_exact||_F / ||y_exact||_F`` per layer (``y_exact`` the
      layer's digital product of the same inputs, bias included), averaged over the
      linear and convolution layers.

    Raises:
        ValueError: no seeds, ``chips_per_pass`` or ``batch_size`` < 1.
    """
    if chips_per_pass < 1 or batch_size < 1:
        raise ValueError(f"chips_per_pass and batch_size must be >= 1, got {chips_per_pass}, {batch_size}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("chip_metrics: give at least one seed")
    acc, err = [], []
    for i in range(0, len(seeds), chips_per_pass):
        chips = ChipBatch(analog, seeds[i: i + chips_per_pass])
        chips.drift(t_s)
        if gdc:
            chips.compensate()
        sums: dict[int, torch.Tensor] = {}
        hooks = []
        if mvm_error:
            def hook(layer: nn.Module, args: tuple, out: torch.Tensor, C: int = chips.n_chips) -> None:
                ref = _exact(layer, args[0])
                if ref is not None:
                    d = torch.stack([((out - ref) ** 2).reshape(C, -1).sum(1), (ref ** 2).reshape(C, -1).sum(1)])
                    sums[id(layer)] = sums.get(id(layer), 0) + d.double()
            hooks = [lc.layer.register_forward_hook(hook) for lc in chips.layers]
        try:
            acc.append(chips.accuracy(x, y, batch_size=batch_size))
        finally:
            for h in hooks:
                h.remove()
        if mvm_error:
            rel = [torch.sqrt(d[0] / d[1].clamp(min=1e-300)) for d in sums.values()]
            err.append(torch.stack(rel).mean(0) if rel else torch.full((chips.n_chips,), float("nan")))
    out = {"accuracy": torch.cat(acc)}
    if mvm_error:
        out["mvm_error"] = torch.cat(err)
    return out


def chip_accuracies(analog: nn.Module, x: torch.Tensor, y: torch.Tensor, seeds: Sequence[int], t_s: float,
                    gdc: bool = True, batch_size: int = DEFAULT_BATCH_SIZE,
                    chips_per_pass: int = DEFAULT_CHIPS_PER_PASS) -> torch.Tensor:
    """Test accuracy (len(seeds),) of the chips programmed with ``seeds``
    (:func:`chip_metrics`)."""
    return chip_metrics(analog, x, y, seeds, t_s, gdc, batch_size, chips_per_pass)["accuracy"]


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
    analog = aimc.convert(model, spec)
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
