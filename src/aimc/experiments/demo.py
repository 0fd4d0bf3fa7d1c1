"""The aimc demo: a CNN trained digitally, run on analog chips as they drift for a year.

:func:`run_demo` trains a small CNN in float32, converts it onto a chip preset, programs
``n_chips`` chip instances (one per seed) and measures test accuracy at each time since
programming, without and with global drift compensation (GDC). :func:`aimc.report.demo_plot.plot_demo` draws
the result.

Runtime on 2 CPU cores: ``digits`` (default; 1,437 train / 360 test images) takes about
10 s in all. ``fashion-mnist`` trains 3 epochs on 60,000 images (about 1 min) and
evaluates the analog model on a 2,000-image seeded subset of the test set by default
(``max_test``; about 2 s per evaluation, 100 evaluations for 10 chips and 5 times), so
about 5 min in all (measured: 4 min 40 s on pcm-hermes); ``max_test=10000`` uses the
whole test set (about 20 min).

Example:
    >>> from aimc.experiments.demo import run_demo
    >>> r = run_demo("digits", chip="pcm-hermes", n_chips=2, times_s=(1, 86400))
    >>> [row["label"] for row in r["rows"]]
    ['1 s', '1 day']
    >>> 0.9 < r["fp_accuracy"] <= 1.0
    True
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

import aimc
from aimc.workloads.data import load_dataset
from aimc.experiments.common import mean_std, num_threads, time_label
from aimc.workloads.recipes import RECIPES
from aimc.train.digital import accuracy, n_params, train_digital
__all__ = ["DEFAULT_TIMES_S", "run_demo", "chip_accuracies"]

#: 1 s, 1 hour, 1 day, 1 month (30 days), 1 year (365 days), in seconds.
DEFAULT_TIMES_S = (1, 3600, 86400, 2592000, 31536000)

_EVAL_BATCH = 128  # analog reads are faster in cache-sized batches

#: ``progress(advance, total, description)``: ``advance`` steps done since the last call.
Progress = Callable[[int, int, str], None]


def chip_accuracies(analog: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, times_s: Sequence[float],
                    chip_seeds: Sequence[int | None], on_step: Callable[[int, float], None] | None = None,
                    ) -> tuple[list[list[float]], list[list[float]]]:
    """Test accuracy of a converted model on several chips over time, without and with GDC.

    For each seed: ``aimc.program(seed)`` (a seed None: the chip as programmed), then for
    every time ``t``: ``aimc.drift(t)``, accuracy, ``aimc.compensate``, accuracy,
    ``aimc.compensate(enable=False)``.

    Returns:
        ``(no_gdc, gdc)``, each ``[time][chip]`` accuracies in [0, 1].
    """
    no_gdc = [[0.0] * len(chip_seeds) for _ in times_s]
    gdc = [[0.0] * len(chip_seeds) for _ in times_s]
    for c, chip_seed in enumerate(chip_seeds):
        if chip_seed is not None:
            aimc.program(analog, seed=chip_seed)
        for k, t in enumerate(times_s):
            aimc.drift(analog, t_s=t)
            no_gdc[k][c] = accuracy(analog, x, y, batch_size=_EVAL_BATCH)
            aimc.compensate(analog)
            gdc[k][c] = accuracy(analog, x, y, batch_size=_EVAL_BATCH)
            aimc.compensate(analog, enable=False)
            if on_step is not None:
                on_step(c, t)
    return no_gdc, gdc


def run_demo(dataset: str | None = None, chip: str | None = None, n_chips: int | None = None,
             times_s: Sequence[float] = DEFAULT_TIMES_S, seed: int = 0, progress: Progress | None = None,
             root: str | Path | None = None, max_test: int | None = None,
             checkpoint: str | Path | None = None) -> dict[str, Any]:
    """Train a CNN digitally, then measure its accuracy on ``n_chips`` drifting analog chips.

    For chip ``i`` the model is programmed with ``aimc.program(seed=1_000_000 * seed + i)``;
    then for every time ``t``: ``aimc.drift(t)``, test accuracy without compensation,
    ``aimc.compensate``, test accuracy with GDC, ``aimc.compensate(enable=False)``.
    The whole run is deterministic for a given ``seed``.

    Args:
        dataset: ``"digits"`` or ``"fashion-mnist"``; None: the checkpoint's, else digits.
        chip: chip preset name or YAML path; None: the checkpoint's chip, else pcm-hermes.
        n_chips: number of chip instances (programming seeds), >= 1; None: 10 (1 for a
            programmed checkpoint).
        times_s: times since programming, seconds, each > 0.
        seed: seed of the data split, weight init, training and chip seeds.
        progress: optional hook ``progress(advance, total, description)``, called once
            per training epoch and once per (chip, time) evaluation.
        root: folder of the data files (fashion-mnist only).
        max_test: evaluate on a seeded random subset of at most this many test images
            (default: the data set's recipe, see :data:`RECIPES`).
        checkpoint: evaluate a checkpoint of ``aimc train`` instead of training (its data
            set must match ``dataset``): trained weights are programmed onto ``n_chips``
            chips; a programmed chip (``--method hybrid``) is evaluated as saved, alone.

    Returns:
        A JSON-able dict with ``dataset``, ``chip``, ``method`` (``digital`` or the
        checkpoint's), ``n_chips``, ``seed``, ``checkpoint`` (its path or None),
        ``programmed`` (True: the checkpoint's own chip was evaluated), ``chip_seeds``,
        ``n_train``, ``n_test``, ``n_params``, ``fp_accuracy``, ``torch_threads``,
        ``elapsed_s`` and ``rows``:
        one dict per time with ``label``, ``t_s``, ``no_gdc_mean``, ``no_gdc_std``,
        ``no_gdc_per_chip``, ``gdc_mean``, ``gdc_std``, ``gdc_per_chip`` (accuracies in
        [0, 1]; std is the sample std over chips, 0 for one chip).

    Raises:
        ValueError: unknown dataset, bad ``n_chips`` / ``seed`` / ``times_s`` / ``max_test``,
            an unreadable checkpoint or one that does not fit the request (file and reason).
        aimc.config.ConfigError: unknown or invalid chip.
        FileNotFoundError: fashion-mnist files missing.

    Example:
        >>> r = run_demo(n_chips=1, times_s=(3600,), chip="ideal")
        >>> r["rows"][0]["no_gdc_mean"] == r["fp_accuracy"]
        True
    """
    ck = None
    if checkpoint is not None:  # read and check it before any work
        from aimc.nn.io import read_checkpoint

        ck = read_checkpoint(checkpoint)
        trained_on = ck.run.get("dataset")
        if dataset is None:
            dataset = trained_on if trained_on in RECIPES else "digits"
        if trained_on is not None and trained_on != dataset:
            raise ValueError(f"{checkpoint} was trained on {trained_on!r}, not {dataset!r}")
    dataset = dataset or "digits"
    if dataset not in RECIPES:
        raise ValueError(f"unknown dataset {dataset!r}; allowed: {', '.join(RECIPES)}")
    programmed = ck is not None and ck.kind == "programmed"
    if programmed and n_chips not in (None, 1):
        raise ValueError(f"{checkpoint} holds one programmed chip (evaluated as saved); n_chips (--chips) must be "
                         f"1 or left out, got {n_chips}")
    n_chips = (1 if programmed else 10) if n_chips is None else n_chips
    if int(n_chips) != n_chips or n_chips < 1:
        raise ValueError(f"n_chips must be an integer >= 1, got {n_chips}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed}")
    times = [float(t) for t in times_s]
    if not times or any(not t > 0 for t in times):
        raise ValueError(f"times_s must be one or more times > 0 seconds, got {tuple(times_s)}")
    recipe = RECIPES[dataset]
    max_test = recipe["max_test"] if max_test is None else max_test
    if max_test is not None and max_test < 1:
        raise ValueError(f"max_test must be >= 1, got {max_test}")
    if programmed:
        assert ck is not None
        spec = ck.chip()
        assert spec is not None  # read_checkpoint refuses a programmed checkpoint without chips
        if chip is not None and aimc.chips.load(chip) != spec:
            raise ValueError(f"{checkpoint} holds a chip programmed on {spec.name!r}, not "
                             f"{aimc.chips.load(chip).name!r}; leave out --chip to evaluate the saved chip")
    else:  # fail on a bad chip before any work
        spec = aimc.chips.load(chip if chip is not None else (ck and ck.chip()) or "pcm-hermes")
    with num_threads(recipe["threads"]):
        return _run(dataset, recipe, spec, n_chips, times, seed, progress, root, max_test, ck)


def _run(dataset, recipe, spec, n_chips, times, seed, progress, root, max_test, ck=None) -> dict[str, Any]:
    """:func:`run_demo` after its arguments were checked."""
    start = time.perf_counter()

    total = recipe["epochs"] + n_chips * len(times)
    report = progress if progress is not None else (lambda advance, total, description: None)
    report(0, total, f"loading {dataset}")
    x_tr, y_tr, x_te, y_te = load_dataset(dataset, root=root, seed=seed)
    if max_test is not None and len(x_te) > max_test:
        keep = torch.randperm(len(x_te), generator=torch.Generator().manual_seed(seed))[:max_test]
        x_te, y_te = x_te[keep], y_te[keep]

    method, analog, chip_seeds = "digital", None, [1_000_000 * seed + i for i in range(n_chips)]
    if ck is not None:
        from aimc.workloads.checkpoints import rebuild

        built = rebuild(ck, chip=None if ck.kind == "programmed" else spec)
        model, analog = built.digital, built.analog
        method = str(ck.run.get("method", "unknown"))
        if ck.kind == "programmed":  # the saved chip itself, not new ones
            chip_seeds = [None]
        report(recipe["epochs"], total, "loaded checkpoint")
    else:
        model = recipe["model"](seed=seed)
        train_digital(model, x_tr, y_tr, epochs=recipe["epochs"], lr=recipe["lr"], batch_size=recipe["batch_size"],
                      seed=seed, progress=lambda a, _t, _d: report(a, total, "training digitally"))
        analog = aimc.convert(model, spec)
    assert analog is not None  # rebuilt on ``spec`` or programmed: always analog here
    fp_acc = accuracy(model, x_te, y_te, batch_size=_EVAL_BATCH)
    no_gdc, gdc = chip_accuracies(analog, x_te, y_te, times, chip_seeds,
                                  lambda c, t: report(1, total, f"chip {c + 1}/{n_chips} at {time_label(t)}"))
    if chip_seeds == [None]:
        chip_seeds = [ck.run.get("chip_seed")]

    rows = []
    for k, t in enumerate(times):
        m0, s0 = mean_std(no_gdc[k])
        m1, s1 = mean_std(gdc[k])
        rows.append(dict(label=time_label(t), t_s=t, no_gdc_mean=m0, no_gdc_std=s0, no_gdc_per_chip=no_gdc[k],
                         gdc_mean=m1, gdc_std=s1, gdc_per_chip=gdc[k]))
    return dict(dataset=dataset, chip=spec.name, method=method, n_chips=int(n_chips), seed=int(seed),
                checkpoint=None if ck is None else str(ck.path), programmed=ck is not None and ck.kind == "programmed",
                chip_seeds=chip_seeds,
                n_train=len(x_tr), n_test=len(x_te), n_params=n_params(model), fp_accuracy=fp_acc,
                torch_threads=torch.get_num_threads(), elapsed_s=round(time.perf_counter() - start, 3), rows=rows)
