"""The HAT accuracy table: floating point vs plain training vs hardware-aware training,
on many chips over time since programming.

:func:`hat_table` trains a model digitally (the data set's recipe in
:data:`aimc.experiments.demo.RECIPES`), fine-tunes a copy with hardware-aware training (HAT), and
measures both on ``n_chips`` programmed chips at each time, with global drift
compensation (GDC). ``benchmarks/hat_table.py`` prints it as the README's table.

Example:
    >>> from aimc.experiments.hat_table import hat_table, markdown
    >>> r = hat_table("digits", n_chips=1, times_s=(3600,), hat_epochs=1, max_test=100, max_train=200)
    >>> [row["method"] for row in r["rows"]]
    ['plain', 'hat']
    >>> markdown(r).splitlines()[0].startswith("| method")
    True
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import torch

import aimc
from aimc.workloads.data import load_dataset
from aimc.experiments.common import mean_std, num_threads, time_label
from aimc.experiments.demo import chip_accuracies
from aimc.workloads.recipes import RECIPES
from aimc.train.digital import accuracy, n_params, train_digital
from aimc.train.fit import hat_finetune
from aimc.train.hat import HAT_PRESETS, HATConfig

__all__ = ["hat_table", "hybrid_table", "markdown", "TABLE_TIMES_S"]

#: 1 hour, 1 day, 1 year after programming.
TABLE_TIMES_S = (3600, 86400, 31_536_000)


def hat_table(dataset: str = "fashion-mnist", chip: str = "pcm-hermes", n_chips: int = 10,
              times_s: Sequence[float] = TABLE_TIMES_S, hat: HATConfig | str = "default",
              hat_epochs: int = 10, hat_lr_factor: float = 1 / 3, seed: int = 0,
              max_test: int | None = None, max_train: int | None = None, root=None,
              digital_epochs: int | None = None,
              progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Measure floating point, plain and HAT accuracy on chips (module doc).

    Args:
        dataset: ``digits`` or ``fashion-mnist``; chip: preset name or spec.
        n_chips: chips (programming seeds ``1_000_000 * seed + i``) per model and time.
        times_s: times after programming; hat: a :class:`HATConfig` or preset name.
        hat_epochs: HAT fine-tuning epochs, Adam at ``hat_lr_factor`` x the recipe's lr.
        max_test: evaluate on at most this many test images (default: the recipe's).
        max_train: train on at most this many images (tests and quick looks).
        digital_epochs: epochs of the floating-point model (default: the recipe's).

    Returns:
        A JSON-able dict: ``dataset``, ``chip``, ``hat`` (the config), ``fp_accuracy``,
        ``n_chips``, ``n_test``, ``n_params``, ``elapsed_s`` and ``rows``: per method
        (``plain``, ``hat``), ``fp_accuracy`` of its own weights and per time ``t_s``,
        ``label``, ``mean``, ``std``, ``per_chip`` (with GDC).
    """
    if dataset not in RECIPES:
        raise ValueError(f"unknown dataset {dataset!r}; allowed: {', '.join(RECIPES)}")
    if n_chips < 1 or hat_epochs < 1:
        raise ValueError(f"n_chips and hat_epochs must be >= 1, got {n_chips} and {hat_epochs}")
    cfg = HAT_PRESETS[hat] if isinstance(hat, str) and hat in HAT_PRESETS else hat
    if not isinstance(cfg, HATConfig):
        raise ValueError(f"hat must be a HATConfig or one of {', '.join(HAT_PRESETS)}, got {hat!r}")
    recipe = dict(RECIPES[dataset])
    recipe["epochs"] = digital_epochs or recipe["epochs"]
    report = progress or (lambda a, t, d: None)
    total = recipe["epochs"] + hat_epochs + 2 * n_chips * len(times_s)
    start = time.perf_counter()
    with num_threads(recipe["threads"]):
        (x_tr, y_tr, x_te, y_te), fp = _data_and_fp(dataset, recipe, seed, root, max_test, max_train,
                                                    lambda a: report(a, total, "digital training"))
        hat_model = hat_finetune(fp, x_tr, y_tr, chip, cfg, epochs=hat_epochs, lr=recipe["lr"] * hat_lr_factor,
                                 batch_size=recipe["batch_size"], seed=seed + 1,
                                 progress=lambda a, _t, _d: report(a, total, "hardware-aware training"))
        seeds = [1_000_000 * seed + i for i in range(n_chips)]
        rows = []
        for method, analog in (("plain", aimc.convert(fp, chip)), ("hat", hat_model)):
            _, acc = chip_accuracies(analog, x_te, y_te, times_s, seeds,
                                     lambda c, t: report(1, total, f"{method}: chip {c + 1} at {time_label(t)}"))
            own_fp = accuracy(fp, x_te, y_te) if method == "plain" else _digital_accuracy(analog, fp, x_te, y_te)
            times = [dict(t_s=t, label=time_label(t), mean=mean_std(a)[0], std=mean_std(a)[1], per_chip=a)
                     for t, a in zip(times_s, acc)]
            rows.append(dict(method=method, fp_accuracy=own_fp, times=times))
    return dict(dataset=dataset, chip=aimc.chips.load(chip).name, hat=cfg.to_dict(), hat_epochs=hat_epochs,
                digital_epochs=recipe["epochs"],
                fp_accuracy=rows[0]["fp_accuracy"], n_chips=n_chips, n_test=len(x_te), n_params=n_params(fp),
                seed=seed, elapsed_s=round(time.perf_counter() - start, 1), rows=rows)


def _data_and_fp(dataset, recipe, seed, root, max_test, max_train, advance):
    """The split (test set cut to ``max_test`` images, default the recipe's) and the
    floating-point model trained by ``recipe``."""
    x_tr, y_tr, x_te, y_te = load_dataset(dataset, root=root, seed=seed)
    if max_train is not None:
        x_tr, y_tr = x_tr[:max_train], y_tr[:max_train]
    max_test = recipe["max_test"] if max_test is None else max_test
    if max_test is not None and len(x_te) > max_test:
        keep = torch.randperm(len(x_te), generator=torch.Generator().manual_seed(seed))[:max_test]
        x_te, y_te = x_te[keep], y_te[keep]
    fp = train_digital(recipe["model"](seed=seed), x_tr, y_tr, epochs=recipe["epochs"], lr=recipe["lr"],
                       batch_size=recipe["batch_size"], seed=seed, progress=lambda a, _t, _d: advance(a))
    return (x_tr, y_tr, x_te, y_te), fp


def _digital_accuracy(analog: torch.nn.Module, template: torch.nn.Module, x, y) -> float:
    """Accuracy of a converted model's weights run digitally (no chip, no gains/ranges)."""
    import copy

    from aimc.nn.io import load_state

    digital = copy.deepcopy(template)
    load_state(digital, analog.state_dict())
    return accuracy(digital, x, y)


def markdown(result: dict[str, Any]) -> str:
    """The table as GitHub markdown: one row per method, accuracy (%) mean ± std per time."""
    labels = [t["label"] for t in result["rows"][0]["times"]]
    head = "| method | weights run digitally | " + " | ".join(f"{lab} (GDC)" for lab in labels) + " |"
    lines = [head, "|" + "---|" * (2 + len(labels))]
    lines.append(f"| floating point | {100 * result['fp_accuracy']:.2f} | " + " | ".join("–" for _ in labels) + " |")
    for row in result["rows"]:
        name = {"plain": "plain training", "hat": "hardware-aware training"}[row["method"]]
        cells = " | ".join(f"{100 * t['mean']:.2f} ± {100 * t['std']:.2f}" for t in row["times"])
        lines.append(f"| {name} | {100 * row['fp_accuracy']:.2f} | {cells} |")
    return "\n".join(lines)


def hybrid_table(dataset: str = "fashion-mnist", chip: str = "pcm-hermes", n_chips: int = 10,
                 t_s: float = 2_592_000.0, variants: Sequence[tuple[str, ...]] = (("bias", "out_gain"),
                                                                                 ("bias", "out_gain", "adapter")),
                 rank: int = 4, n_calib: int = 5000, epochs: int = 1, lr: float = 1e-3, seed: int = 0,
                 max_test: int | None = None, root=None, digital_epochs: int | None = None,
                 progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Accuracy of a plainly trained model deployed for ``t_s`` (with GDC), before and after
    hybrid on-device fine-tuning (:func:`aimc.train.hybrid.hybrid_finetune`) of each
    ``variants`` entry (a tuple of parts), on ``n_chips`` chips; ``n_calib`` training
    images (not test images) are the on-device fine-tuning set; ``digital_epochs`` trains
    the floating-point model (default: the recipe's).

    Returns:
        A JSON-able dict with ``fp_accuracy``, ``deployed`` (mean, std, per_chip) and
        ``rows``: per variant, ``parts``, ``trainable`` (digital parameters trained),
        ``mean``, ``std``, ``per_chip``.
    """
    from aimc.train.hybrid import deploy, hybrid_finetune

    if dataset not in RECIPES:
        raise ValueError(f"unknown dataset {dataset!r}; allowed: {', '.join(RECIPES)}")
    recipe = dict(RECIPES[dataset])
    recipe["epochs"] = digital_epochs or recipe["epochs"]
    report = progress or (lambda a, t, d: None)
    total = recipe["epochs"] + n_chips * (1 + len(variants))
    start = time.perf_counter()
    with num_threads(recipe["threads"]):
        (x_tr, y_tr, x_te, y_te), fp = _data_and_fp(dataset, recipe, seed, root, max_test, None,
                                                    lambda a: report(a, total, "digital training"))
        calib = torch.randperm(len(x_tr), generator=torch.Generator().manual_seed(seed + 7))[:n_calib]
        xc, yc = x_tr[calib], y_tr[calib]

        seeds = [1_000_000 * seed + i for i in range(n_chips)]
        base: list[float] = []
        after: list[list[float]] = [[] for _ in variants]
        trainable = [0] * len(variants)
        for c, s in enumerate(seeds):
            base.append(accuracy(deploy(fp, chip, s, t_s), x_te, y_te, batch_size=128))
            report(1, total, f"chip {c + 1}: deployed")
            for v, parts in enumerate(variants):
                m = hybrid_finetune(deploy(fp, chip, s, t_s), xc, yc, parts=parts, rank=rank, epochs=epochs,
                                    lr=lr, seed=seed)
                trainable[v] = sum(p.numel() for p in m.parameters() if p.requires_grad)
                after[v].append(accuracy(m, x_te, y_te, batch_size=128))
                report(1, total, f"chip {c + 1}: {'+'.join(parts)}")
    rows = [dict(parts=list(p), trainable=trainable[v], mean=mean_std(after[v])[0], std=mean_std(after[v])[1],
                 per_chip=after[v]) for v, p in enumerate(variants)]
    return dict(dataset=dataset, chip=aimc.chips.load(chip).name, t_s=t_s, label=time_label(t_s),
                fp_accuracy=accuracy(fp, x_te, y_te), n_params=n_params(fp), n_chips=n_chips, n_calib=n_calib,
                epochs=epochs, rank=rank, n_test=len(x_te), digital_epochs=recipe["epochs"],
                deployed=dict(mean=mean_std(base)[0], std=mean_std(base)[1], per_chip=base),
                rows=rows, elapsed_s=round(time.perf_counter() - start, 1))
