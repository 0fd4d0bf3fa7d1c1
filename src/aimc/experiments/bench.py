"""Micro-benchmarks: how much slower an analog layer is than its digital twin.

:func:`bench_mvm` times ``AnalogLinear`` (a programmed, drifted chip, read noise on)
against ``nn.Linear`` for a few ``(in, out, batch)`` shapes, in one process, under
``torch.no_grad()``. Analog and digital runs are interleaved (their order alternating
each repeat) so that changes in machine load hit both alike; the median of the repeats
is reported.

:func:`bench_cnn` times the forward pass of whole CNNs (LeNet-5, the Fashion-MNIST CNN),
analog against digital, interleaved the same way.

:func:`bench_train` times one training epoch of HAT and of on-chip training against
plain PyTorch training of the same model, interleaved the same way.

Example:
    >>> from aimc.experiments.bench import bench_mvm
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
from aimc import cpp
from aimc.experiments.common import num_threads
from aimc.seeding import seeded

__all__ = ["DEFAULT_SHAPES", "TRAIN_ROWS", "CNN_ROWS", "bench_mvm", "bench_train", "bench_cnn", "parse_shape"]

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
    return dims[0], dims[1], dims[2]


def _time_ms(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - t0)


def bench_mvm(shapes: Sequence[Sequence[int]] = DEFAULT_SHAPES, chip: str = "pcm-hermes", repeats: int = 20,
              warmup: int = 3, t_s: float = 3600.0, seed: int = 0, threads: int | None = None) -> list[dict[str, Any]]:
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
        threads: torch intra-op threads for the run (restored afterwards); None: as set
            (``OMP_NUM_THREADS`` or all cores).

    Returns:
        One dict per shape: ``shape`` ([in, out, batch]), ``analog_ms`` and
        ``digital_ms`` (medians, milliseconds), ``ratio`` (analog / digital), ``chip``,
        ``threads`` (``torch.get_num_threads()`` during the run), ``cpp`` (whether the
        compiled kernels ran; False: the slower PyTorch fallback), ``repeats``,
        ``warmup``, ``t_s``.

    Raises:
        ValueError: bad shape or counts. aimc.config.ConfigError: unknown chip.

    Example:
        >>> r = bench_mvm(shapes=((32, 16, 4),), chip="ideal", repeats=2, warmup=0, threads=1)[0]
        >>> {"analog_ms", "digital_ms", "ratio", "cpp"} <= set(r), r["threads"]
        (True, 1)
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    shapes = [tuple(int(d) for d in s) for s in shapes]
    for s in shapes:
        if len(s) != 3 or min(s) < 1:
            raise ValueError(f"each shape must be (in, out, batch) with positive integers, got {s}")
    spec = aimc.chips.load(chip)
    with num_threads(threads):
        return _bench_mvm_rows(shapes, spec, repeats, warmup, t_s, seed)


def _bench_mvm_rows(shapes, spec, repeats, warmup, t_s, seed) -> list[dict[str, Any]]:
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
                     "threads": torch.get_num_threads(), "cpp": cpp.available(), "repeats": repeats,
                     "warmup": warmup, "t_s": t_s})
    return rows


#: Rows of :func:`bench_train`: ``hat`` and the on-chip methods.
TRAIN_ROWS = ("hat", "analog-sgd", "mixed-precision", "tiki-taka-v2", "c-ttv2")


def _median_pair(run_a: Callable[[], Any], run_b: Callable[[], Any], repeats: int, warmup: int) -> tuple[float, float]:
    """Median ms of ``run_a`` and ``run_b``, interleaved with alternating order."""
    for _ in range(warmup):
        run_a()
        run_b()
    ta, tb = [], []
    for r in range(repeats):
        if r % 2 == 0:
            ta.append(_time_ms(run_a))
            tb.append(_time_ms(run_b))
        else:
            tb.append(_time_ms(run_b))
            ta.append(_time_ms(run_a))
    return statistics.median(ta), statistics.median(tb)


def bench_train(names: Sequence[str] = TRAIN_ROWS, chip: str = "rram-1t1r", repeats: int = 5, warmup: int = 1,
                seed: int = 0, hidden: int = 64, batch_size: int = 16, threads: int | None = 1) -> list[dict[str, Any]]:
    """Time one training epoch on digits (1,437 images) against plain PyTorch training.

    * ``hat``: the digits CNN (:func:`aimc.workloads.models.digits_cnn`) converted to ``pcm-hermes``
      with :func:`aimc.train.hat.enable_hat` (``HATConfig()``), Adam, batch 32 (the digits
      recipe), against the same CNN trained digitally with Adam;
    * on-chip rows (``analog-sgd``, ``mixed-precision``, ``tiki-taka-v2``, ``c-ttv2``):
      :class:`aimc.train.onchip.AnalogMLP` 64-``hidden``-10 on ``chip``'s pulsed device,
      batch ``batch_size``, fast pulse updates, against the same MLP with
      ``torch.optim.SGD`` and autograd.

    Each epoch runs the full training loop (forward, backward, update) over the shuffled
    set; digital and analog epochs are interleaved and the medians of ``repeats`` are
    reported. ``threads`` sets torch's intra-op threads meanwhile (restored afterwards;
    None: leave as set): tensors this small gain nothing from threads, and on a busy
    machine OpenMP spin-waits slow both sides by orders of magnitude.

    Returns:
        One dict per name: ``name``, ``ms_per_epoch``, ``digital_ms_per_epoch``, ``ratio``,
        ``model``, ``chip``, ``batch_size``, ``threads``, ``repeats``.

    Example:
        >>> r = bench_train(names=("analog-sgd",), repeats=1, warmup=0)[0]
        >>> r["name"], r["ratio"] > 0
        ('analog-sgd', True)
    """
    bad = [n for n in names if n not in TRAIN_ROWS]
    if bad or repeats < 1 or warmup < 0:
        raise ValueError(f"names must be among {', '.join(TRAIN_ROWS)} (got {bad}), repeats >= 1 and warmup >= 0 "
                         f"(got {repeats}, {warmup})")
    with num_threads(threads):
        return _bench_train_rows(names, chip, repeats, warmup, seed, hidden, batch_size)


def _bench_train_rows(names, chip, repeats, warmup, seed, hidden, batch_size) -> list[dict[str, Any]]:
    from aimc.workloads.data import load_dataset
    from aimc.workloads.models import digits_cnn
    from aimc.train.hat import HATConfig, enable_hat
    from aimc.train.onchip import METHODS, AnalogMLP, OnChipConfig, device_for, digital_epoch, digital_mlp

    x, y, _, _ = load_dataset("digits", seed=seed)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    rows = []
    for name in names:
        if name == "hat":
            digital = digits_cnn(seed=seed)
            analog = aimc.convert(digits_cnn(seed=seed), "pcm-hermes")
            enable_hat(analog, HATConfig(), seed=seed)
            opt_a = torch.optim.Adam(analog.parameters(), lr=3e-3)
            opt_d: torch.optim.Optimizer = torch.optim.Adam(digital.parameters(), lr=3e-3)
            bs, model, row_chip = 32, "digits-cnn", "pcm-hermes"
            run_a = lambda: digital_epoch(analog, opt_a, x, y, bs, order)  # noqa: E731
        else:
            assert name in METHODS
            xf = x.flatten(1)
            cfg = OnChipConfig(method=name, hidden=(hidden,), batch_size=batch_size)
            net = AnalogMLP(xf.shape[1], 10, device_for(chip), cfg, seed=seed)
            digital = digital_mlp(xf.shape[1], 10, (hidden,), seed=seed)
            opt_d = torch.optim.SGD(digital.parameters(), lr=0.1)
            bs, model, row_chip = batch_size, f"mlp-64-{hidden}-10", chip
            run_a = lambda: net.train_epoch(xf, y, 0.1, order)  # noqa: E731
        run_d = lambda: digital_epoch(digital, opt_d, x, y, bs, order)  # noqa: E731
        a_ms, d_ms = _median_pair(run_a, run_d, repeats, warmup)
        rows.append({"name": name, "ms_per_epoch": round(a_ms, 2), "digital_ms_per_epoch": round(d_ms, 2),
                     "ratio": round(a_ms / d_ms, 2), "model": model, "chip": row_chip, "batch_size": bs,
                     "threads": torch.get_num_threads(), "repeats": repeats})
    return rows


#: Rows of :func:`bench_cnn`: name -> input shape of one image.
CNN_ROWS = {"lenet5": (1, 32, 32), "fashion-cnn": (1, 28, 28)}


def _lenet5(seed: int) -> nn.Sequential:
    """LeNet-5 (LeCun et al., Proc. IEEE 86, 2278 (1998)) on 1x32x32 inputs, with ReLU and
    max-pooling: conv 5x5 (6), pool, conv 5x5 (16), pool, 400-120-84-10 (61,706 params)."""
    with seeded(seed):
        return nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def bench_cnn(names: Sequence[str] = tuple(CNN_ROWS), chip: str = "pcm-hermes", batch: int = 128, repeats: int = 20,
              warmup: int = 3, t_s: float = 3600.0, seed: int = 0, threads: int | None = None) -> list[dict[str, Any]]:
    """Time the forward pass of a CNN on the chip against the digital model.

    ``lenet5`` (LeNet-5 on 1x32x32) and ``fashion-cnn`` (:func:`aimc.workloads.models.fashion_cnn`,
    1x28x28): the digital model and its conversion (``aimc.convert``, ``aimc.program(seed)``,
    ``aimc.drift(t_s)``: programming noise, drift, read noise), both in eval mode under
    ``torch.no_grad()``, on the same random batch; ``warmup`` untimed passes of each, then
    ``repeats`` timed passes of each, interleaved with alternating order; medians.

    Args:
        names: rows of :data:`CNN_ROWS`.
        chip: chip preset name or YAML path.
        batch: images per forward pass.
        repeats: timed passes (>= 1); warmup: untimed passes first (>= 0).
        t_s: time since programming (s).
        seed: seed of the weights, inputs and programming.
        threads: torch's intra-op threads meanwhile (restored afterwards); None: as set.

    Returns:
        One dict per name: ``name``, ``analog_ms``, ``digital_ms`` (medians), ``ratio``
        (analog / digital), ``input`` ([batch, C, H, W]), ``chip``, ``threads``, ``repeats``,
        ``warmup``, ``t_s``.

    Example:
        >>> r = bench_cnn(names=("lenet5",), chip="ideal", batch=2, repeats=1, warmup=0)[0]
        >>> r["name"], r["analog_ms"] > 0, r["digital_ms"] > 0
        ('lenet5', True, True)
    """
    bad = [n for n in names if n not in CNN_ROWS]
    if bad or repeats < 1 or warmup < 0 or batch < 1:
        raise ValueError(f"names must be among {', '.join(CNN_ROWS)} (got {bad}), batch >= 1, repeats >= 1 and "
                         f"warmup >= 0 (got {batch}, {repeats}, {warmup})")
    from aimc.workloads.models import fashion_cnn

    spec = aimc.chips.load(chip)
    rows = []
    with num_threads(threads):
        for name in names:
            build = _lenet5 if name == "lenet5" else fashion_cnn
            digital = build(seed=seed).eval()
            analog = aimc.convert(digital, spec).eval()
            aimc.program(analog, seed=seed)
            aimc.drift(analog, t_s=t_s)
            shape = (batch, *CNN_ROWS[name])
            x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
            with torch.no_grad():
                a_ms, d_ms = _median_pair(lambda: analog(x), lambda: digital(x), repeats, warmup)
            rows.append({"name": name, "analog_ms": round(a_ms, 4), "digital_ms": round(d_ms, 4),
                         "ratio": round(a_ms / d_ms, 2), "input": list(shape), "chip": spec.name,
                         "threads": torch.get_num_threads(), "repeats": repeats, "warmup": warmup, "t_s": t_s})
    return rows
