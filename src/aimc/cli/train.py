"""``aimc train``: digital, hardware-aware, hybrid or on-chip training; writes a checkpoint."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aimc.cli.common import console, fail, output_file, progress_bar, user_errors

__all__ = ["train"]


def train(
    dataset: str = typer.Option("digits", help="Data set: digits or fashion-mnist."),
    method: str = typer.Option("hat", help="digital (plain training), hat (hardware-aware fine-tuning), hybrid "
                                               "(on-device fine-tuning of a deployed chip's digital parts), or on-chip "
                                               "training of an MLP by pulses: analog-sgd, mixed-precision, tiki-taka-v2, c-ttv2."),
    chip: Optional[str] = typer.Option(None, help="Chip (preset or YAML): HAT noise and quantisation (default "
                                                  "pcm-hermes), or, on-chip, the chip whose pulsed: section is the "
                                                  "device (rram-1t1r (default), ecram or your YAML)."),
    seed: int = typer.Option(0, help="Seed of the split, initialisation and training."),
    epochs: int = typer.Option(15, help="HAT fine-tuning epochs (after the digital recipe), or on-chip training epochs."),
    hidden: int = typer.Option(64, help="On-chip methods: hidden width of the MLP."),
    lr: Optional[float] = typer.Option(None, help="On-chip methods: learning rate (default 0.1)."),
    noise_scale: float = typer.Option(2.0, help="Multiplier of the device weight noise during HAT."),
    t_eval: float = typer.Option(3600.0, help="Time after programming (s) whose noise HAT trains for."),
    t_eval_max: float = typer.Option(31_536_000.0, help="HAT: train for times drawn log-uniformly in "
                                                         "[t-eval, this]; 0: only t-eval."),
    hat_preset: str = typer.Option("default", "--hat-preset",
                                   help="HAT settings: default (chip device noise, --noise-scale, --t-eval) or afm."),
    init: Optional[Path] = typer.Option(None, help="Start from this checkpoint's weights (of `aimc train --method "
                                                   "digital` or `hat`) instead of training digitally."),
    chip_seed: int = typer.Option(0, help="hybrid: programming seed of the deployed chip."),
    deploy_time: float = typer.Option(2_592_000.0, help="hybrid: time since programming (s), default 1 month."),
    parts: str = typer.Option("bias,out_gain,adapter", help="hybrid: digital parts to train, comma-separated."),
    rank: int = typer.Option(4, help="hybrid: rank of the digital adapters."),
    n_calib: int = typer.Option(5000, help="hybrid: training images used for on-device fine-tuning."),
    out: Optional[Path] = typer.Option(None, help="Checkpoint to write (safetensors; default aimc-model.safetensors, "
                                                  "numbered aimc-model-1.safetensors, ... if taken)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    data_root: Optional[Path] = typer.Option(None, help="Folder of the data files (fashion-mnist)."),
) -> None:
    """Train a CNN digitally, optionally HAT-fine-tune it for a chip, or train an MLP on-chip; save a checkpoint."""
    from aimc.workloads.data import load_dataset
    from aimc.experiments.common import num_threads
    from aimc.workloads.recipes import RECIPES
    from aimc.workloads.checkpoints import mlp_spec, model_spec
    from aimc.nn.io import load_state, save_state
    from aimc.train.digital import accuracy, train_digital
    from aimc.train.fit import hat_finetune
    from aimc.train.hat import HAT_PRESETS
    from aimc.train.onchip import METHODS, fit_onchip
    import torch

    if method not in ("digital", "hat", "hybrid", *METHODS):
        fail(f"--method must be digital, hat, hybrid or one of {', '.join(METHODS)}; got {method!r}")
    if hat_preset not in HAT_PRESETS:
        fail(f"--hat-preset must be one of {', '.join(HAT_PRESETS)}, got {hat_preset!r}")
    if init is not None and method in METHODS:
        fail(f"--init does not apply to on-chip training ({method} starts from the devices' initial state)")
    with user_errors():
        out = output_file(out, "aimc-model.safetensors", force)
    with user_errors(), progress_bar(enabled=True) as hook:
        if dataset not in RECIPES:
            raise ValueError(f"unknown dataset {dataset!r}; allowed: {', '.join(RECIPES)}")
        r = RECIPES[dataset]
        init_ck = None if init is None else _init_checkpoint(init, dataset)  # refuse before any work
        report = hook or (lambda a, t, d: None)
        x_tr, y_tr, x_te, y_te = load_dataset(dataset, root=data_root, seed=seed)
        if method in METHODS:  # on-chip: an MLP whose weights are updated by pulses
            from aimc.chips import load

            chip = chip or "rram-1t1r"
            with num_threads(r.get("threads")):
                res = fit_onchip(x_tr, y_tr, chip=chip, method=method, hidden=hidden, epochs=epochs, lr=lr,
                                 seed=seed, progress=lambda a, t, _d: report(a, t, method), x_test=x_te, y_test=y_te)
            acc = res.test_accuracy
            assert acc is not None  # evaluated on x_test each epoch
            net = res.model.to_torch()
            spec = load(chip)  # each layer's chip: `aimc demo` deploys the weights there by default
            chips = {name: spec for name, m in net.named_modules() if isinstance(m, torch.nn.Linear)}
            run = dict(dataset=dataset, method=method, chip=spec.name, seed=seed, test_accuracy=acc,
                       onchip=res.config, history=res.history)
            out = save_state(net, out, chips=chips, model_spec=mlp_spec(net), run=run, if_exists="overwrite")
            console.print(f"saved {out} ({method} on {chip}, test accuracy {100 * acc:.2f} %); evaluate it on "
                          f"chips with: aimc demo --dataset {dataset} --checkpoint {out} (or aimc.train.onchip."
                          f"load_mlp)", highlight=False, soft_wrap=True)
            return
        chip = chip or "pcm-hermes"
        total = r["epochs"] + (epochs if method in ("hat", "hybrid") else 0)
        model = r["model"](seed=seed)
        if init_ck is not None:
            load_state(model, init_ck)
        else:
            train_digital(model, x_tr, y_tr, epochs=r["epochs"], lr=r["lr"], batch_size=r["batch_size"], seed=seed,
                          progress=lambda a, _t, _d: report(a, total, "digital"))
        run = dict(dataset=dataset, method=method, seed=seed, init=None if init is None else str(init))
        if method == "hybrid":  # fine-tune a deployed chip's digital parts; save the chip itself
            from aimc.train.hybrid import deploy_and_finetune

            calib = torch.randperm(len(x_tr), generator=torch.Generator().manual_seed(seed + 7))[:n_calib]
            part_list = tuple(p.strip() for p in parts.split(","))
            deployed, before, after = deploy_and_finetune(
                model, chip, x_tr[calib], y_tr[calib], x_te, y_te, chip_seed=chip_seed, t_s=deploy_time,
                parts=part_list, rank=rank, epochs=epochs, lr=r["lr"] / 3,
                batch_size=r["batch_size"], seed=seed, progress=lambda a, _t, _d: report(a, total, "on-device"))
            run.update(chip=chip, chip_seed=chip_seed, deploy_time_s=deploy_time, parts=list(part_list), rank=rank,
                       n_calib=n_calib, test_accuracy_deployed=before, test_accuracy=after)
            saved_spec = {**model_spec(dataset), **({"adapter_rank": rank} if "adapter" in part_list else {})}
            out = save_state(deployed, out, kind="programmed", model_spec=saved_spec, run=run, if_exists="overwrite")
            console.print(f"chip {chip_seed} of {chip} after {deploy_time:g} s: test accuracy {100 * before:.2f} % "
                          f"deployed, {100 * after:.2f} % after on-device fine-tuning of {parts}; saved the "
                          f"deployed chip to {out}; evaluate it over time with: aimc demo --dataset {dataset} "
                          f"--checkpoint {out}", highlight=False, soft_wrap=True)
            return
        cfg, saved = None, model
        if method == "hat":
            cfg = HAT_PRESETS[hat_preset].replace(noise_scale=noise_scale, t_eval_s=t_eval,
                                                  t_eval_max_s=t_eval_max or None) \
                if hat_preset == "default" \
                else HAT_PRESETS[hat_preset]
            saved = hat_finetune(model, x_tr, y_tr, chip, cfg, epochs=epochs, lr=r["lr"] / 3,
                                 batch_size=r["batch_size"], seed=seed + 1,
                                 progress=lambda a, _t, _d: report(a, total, "hardware-aware"))
            load_state(model, saved.state_dict())  # the trained weights, digitally
            run.update(chip=chip, hat=cfg.to_dict())
        acc = accuracy(model, x_te, y_te)
        run.update(digital_test_accuracy=acc)
        out = save_state(saved, out, kind="weights", model_spec=model_spec(dataset), run=run, if_exists="overwrite")
    console.print(f"saved {out} ({method}, digital test accuracy {100 * acc:.2f} %); "
                  f"evaluate on chips with: aimc demo --dataset {dataset} --checkpoint {out}",
                  highlight=False, soft_wrap=True)


def _init_checkpoint(init: Path, dataset: str):
    """``--init``'s checkpoint if it holds trained weights of the data set's CNN, else the reason."""
    from aimc.nn.io import read_checkpoint

    ck = read_checkpoint(init)
    if ck.kind == "programmed":
        raise ValueError(f"{init} holds a programmed chip (aimc train --method hybrid), not trained weights; "
                         "--init takes a checkpoint of --method digital or hat")
    trained_on = ck.run.get("dataset")
    if trained_on is not None and trained_on != dataset:
        raise ValueError(f"{init} was trained on {trained_on!r}, not {dataset!r}; pass --dataset {trained_on}")
    if (ck.model or {}).get("name") == "mlp":
        raise ValueError(f"{init} holds an MLP ({ck.run.get('method', 'on-chip')} training); --init starts the "
                         f"{dataset} CNN from a checkpoint of --method digital or hat")
    return ck
