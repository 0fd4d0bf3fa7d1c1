"""Micro-benchmarks: how much slower an analog layer is than its digital twin.

:func:`bench_mvm` times ``AnalogLinear`` (a programmed, drifted chip, read noise on)
against ``nn.Linear`` for a few ``(in, out, batch)`` shapes, in one process, under
``torch.no_grad()``. Analog and digital runs are interleaved (their order alternating
each repeat) so that changes in machine load hit both alike; the median of the repeats
is reported.

Example:
    >>> from aimc.bench import bench_mvm
    >>> rows = bench_mvm(shapes=((64, 32, 8),), chip="pcm-hermes", repeats=3, warmup=1)
    >>> rows[0]["shape"], rows[0]["ratio"] > 0
    ([64, 32, 8], True)
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Sequence

import torch
from torch import nn

import aimc

__all__ = ["DEFAULT_SHAPES", "bench_mvm", "parse_shape"]

#: ``(in_features, out_features, batch)`` timed by default.
DEFAULT_SHAPES = ((1024, 1024, 256), (4096, 4096, 64))


def parse_shape(text: str) -> tuple[int, int, int]:
    """Parse ``"IN x OUT x BATCH"`` (e.g. ``"64x64x8"``) into three positive integers.

    Example:
        >>> parse_shape("1024x512x16")
        (1024, 512, 16)
    """
    parts = text.lower().replace(" ", "").split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise ValueError(f"shape must be IN x OUT x BATCH with positive integers, e.g. 64x64x8; got {text!r}")
    return dims  # type: ignore[return-value]


def _time_ms(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - t0)


def bench_mvm(shapes: Sequence[Sequence[int]] = DEFAULT_SHAPES, chip: str = "pcm-hermes", repeats: int = 20,
              warmup: int = 3, t_s: float = 3600.0, seed: int = 0) -> list[dict[str, Any]]:
    """Time analog vs digital forward passes of a linear layer for each shape.

    For each ``(in, out, batch)``: build ``nn.Linear(in, out)`` (weights seeded), convert
    it with ``aimc.convert(layer, chip)``, ``aimc.program(seed=seed)``,
    ``aimc.drift(t_s=t_s)``, run ``warmup`` untimed passes of each, then ``repeats``
    timed passes of each, interleaved.

    Args:
        shapes: ``(in_features, out_features, batch)`` triples.
        chip: chip preset name or YAML path.
        repeats: timed passes per layer (>= 1); warmup: untimed passes first (>= 0).
        t_s: time since programming (s); the first read after it builds the read
            matrices, which the warm-up absorbs.
        seed: seed of the weights, inputs and programming.

    Returns:
        One dict per shape: ``shape`` ([in, out, batch]), ``analog_ms`` and
        ``digital_ms`` (medians, milliseconds), ``ratio`` (analog / digital), ``chip``,
        ``threads`` (``torch.get_num_threads()``), ``repeats``, ``warmup``, ``t_s``.

    Raises:
        ValueError: bad shape or counts. aimc.config.ConfigError: unknown chip.

    Example:
        >>> r = bench_mvm(shapes=((32, 16, 4),), chip="ideal", repeats=2, warmup=0)[0]
        >>> sorted(r)[:4]
        ['analog_ms', 'chip', 'digital_ms', 'ratio']
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    shapes = [tuple(int(d) for d in s) for s in shapes]
    for s in shapes:
        if len(s) != 3 or min(s) < 1:
            raise ValueError(f"each shape must be (in, out, batch) with positive integers, got {s}")
    spec = aimc.chips.load(chip)
    gen = torch.Generator().manual_seed(int(seed))
    rows = []
    for n_in, n_out, batch in shapes:
        digital = nn.Linear(n_in, n_out)
        with torch.no_grad():
            bound = 1.0 / n_in ** 0.5
            digital.weight.uniform_(-bound, bound, generator=gen)
            digital.bias.uniform_(-bound, bound, generator=gen)
        analog = aimc.convert(digital, spec)
        aimc.program(analog, seed=seed)
        aimc.drift(analog, t_s=t_s)
        x = torch.randn(batch, n_in, generator=gen)
        times: dict[str, list[float]] = {"analog": [], "digital": []}
        layers = {"analog": analog, "digital": digital}
        with torch.no_grad():
            for _ in range(warmup):
                analog(x)
                digital(x)
            for r in range(repeats):
                order = ("analog", "digital") if r % 2 == 0 else ("digital", "analog")
                for name in order:
                    layer = layers[name]
                    times[name].append(_time_ms(lambda: layer(x)))
        a_ms, d_ms = statistics.median(times["analog"]), statistics.median(times["digital"])
        rows.append({"shape": [n_in, n_out, batch], "analog_ms": round(a_ms, 4), "digital_ms": round(d_ms, 4),
                     "ratio": round(a_ms / d_ms, 2) if d_ms > 0 else None, "chip": spec.name,
                     "threads": torch.get_num_threads(), "repeats": repeats, "warmup": warmup, "t_s": t_s})
    return rows
