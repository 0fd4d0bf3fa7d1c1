"""The ``aimc`` command: parses arguments and calls the library; nothing more.

Commands:
    aimc demo [--dataset digits|fashion-mnist] [--chip pcm-hermes] [--chips 10] [--seed 0]
              [--out aimc-demo.png] [--force] [--json]
    aimc bench mvm [--chip pcm-hermes] [--repeats 20] [--warmup 3] [--json]
    aimc bench train [--chip rram-1t1r] [--repeats 5] [--name hat ...] [--json]
    aimc chips
    aimc estimate MODEL [--chip pcm-hermes] [--baseline gpu-a100] [--json] [--plot PATH]

Bad input (unknown dataset or chip, ``--chips 0``, an existing ``--out`` without
``--force``) prints one ``error: ...`` line to stderr and exits with status 2.

Example:
    >>> from typer.testing import CliRunner
    >>> from aimc.cli.main import app
    >>> "ideal" in CliRunner().invoke(app, ["chips"]).stdout
    True
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

import aimc
from aimc.config import ConfigError

app = typer.Typer(help="aimc: simulate neural networks on analog in-memory computing chips.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False)
bench_app = typer.Typer(help="Benchmarks of the simulator's speed.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

_out = Console()
_err = Console(stderr=True)


def _fail(message: str) -> None:
    """Print ``error: message`` to stderr (no markup, no wrapping) and exit 2."""
    _err.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True)
    raise typer.Exit(2)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the library's input errors into one-line messages instead of tracebacks."""
    try:
        yield
    except KeyError as e:
        _fail(str(e.args[0]) if e.args else "unknown key")
    except (ConfigError, ValueError, FileNotFoundError) as e:
        _fail(str(e))


@contextmanager
def _progress(enabled: bool) -> Iterator:
    """A ``progress(advance, total, description)`` hook drawing a Rich bar on stderr."""
    if not enabled or not _err.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=_err, transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def hook(advance: int, total: int, description: str) -> None:
            bar.update(task, advance=advance, total=total, description=description)

        yield hook


def _pct(mean: float, std: float) -> str:
    return f"{100 * mean:.2f} ± {100 * std:.2f}"


@app.command()
def demo(
    dataset: str = typer.Option("digits", help="Data set: digits or fashion-mnist."),
    chip: str = typer.Option("pcm-hermes", help="Chip preset name (see `aimc chips`) or a YAML file."),
    chips: int = typer.Option(10, help="Number of chip instances (programming seeds), >= 1."),
    seed: int = typer.Option(0, help="Seed of the split, training and chips."),
    out: Path = typer.Option(Path("aimc-demo.png"), help="Where to save the accuracy-vs-time plot (PNG)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    as_json: bool = typer.Option(False, "--json", help="Print only the JSON result to stdout."),
    max_test: Optional[int] = typer.Option(None, help="Evaluate on at most this many test images."),
    data_root: Optional[Path] = typer.Option(None, help="Folder of the data files (fashion-mnist)."),
    checkpoint: Optional[Path] = typer.Option(None, help="Evaluate weights saved by `aimc train` instead of training."),
) -> None:
    """Train a CNN, run it on drifting analog chips from 1 s to 1 year, table and plot."""
    from aimc.demo import plot_demo, run_demo

    if chips < 1:
        _fail(f"--chips must be >= 1, got {chips}")
    if out.exists() and not force:
        _fail(f"{out} exists; pass --force to overwrite it or --out to choose another file")
    with _user_errors(), _progress(enabled=True) as hook:
        result = run_demo(dataset=dataset, chip=chip, n_chips=chips, seed=seed, progress=hook,
                          root=data_root, max_test=max_test, checkpoint=checkpoint)
    plot_demo(result, out)
    if as_json:
        typer.echo(json.dumps(result))
        return
    fp = result["fp_accuracy"]
    table = Table(title=f"{result['dataset']} CNN ({result['n_params']:,} params, {result['method']} training) "
                        f"on {result['chip']}: "
                        f"test accuracy (%), mean ± std over {result['n_chips']} chips, {result['n_test']} images")
    for col in ("time", "digital (FP)", "no compensation", "with GDC"):
        table.add_column(col, justify="left" if col == "time" else "right")
    for row in result["rows"]:
        table.add_row(row["label"], f"{100 * fp:.2f}", _pct(row["no_gdc_mean"], row["no_gdc_std"]),
                      _pct(row["gdc_mean"], row["gdc_std"]))
    _out.print(table)
    _out.print(f"plot saved to {out} ({result['elapsed_s']:.1f} s)", highlight=False, soft_wrap=True)


@app.command()
def train(
    dataset: str = typer.Option("digits", help="Data set: digits or fashion-mnist."),
    method: str = typer.Option("hat", help="digital (plain training), hat (hardware-aware fine-tuning), hybrid "
                                               "(on-device fine-tuning of a deployed chip's digital parts), or on-chip "
                                               "training of an MLP by pulses: analog-sgd, mixed-precision, tiki-taka-v2, c-ttv2."),
    chip: Optional[str] = typer.Option(None, help="Chip: HAT noise and quantisation (default pcm-hermes), or the pulsed "
                                                  "device of on-chip training (rram-1t1r (default) or ecram)."),
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
    init: Optional[Path] = typer.Option(None, help="Start from this checkpoint instead of training digitally."),
    chip_seed: int = typer.Option(0, help="hybrid: programming seed of the deployed chip."),
    deploy_time: float = typer.Option(2_592_000.0, help="hybrid: time since programming (s), default 1 month."),
    parts: str = typer.Option("bias,out_gain,adapter", help="hybrid: digital parts to train, comma-separated."),
    rank: int = typer.Option(4, help="hybrid: rank of the digital adapters."),
    n_calib: int = typer.Option(5000, help="hybrid: training images used for on-device fine-tuning."),
    out: Path = typer.Option(Path("aimc-model.safetensors"), help="Checkpoint to write (safetensors)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    data_root: Optional[Path] = typer.Option(None, help="Folder of the data files (fashion-mnist)."),
) -> None:
    """Train a CNN digitally, optionally HAT-fine-tune it for a chip, or train an MLP on-chip; save a checkpoint."""
    from aimc.data import load_dataset
    from aimc.demo import RECIPES, _num_threads
    from aimc.models import accuracy, train_digital
    from aimc.train.fit import hat_finetune, load_checkpoint, load_into, save_checkpoint
    from aimc.train.hat import HAT_PRESETS
    from aimc.train.onchip import METHODS, fit_onchip
    import torch

    if method not in ("digital", "hat", "hybrid", *METHODS):
        _fail(f"--method must be digital, hat, hybrid or one of {', '.join(METHODS)}; got {method!r}")
    if hat_preset not in HAT_PRESETS:
        _fail(f"--hat-preset must be one of {', '.join(HAT_PRESETS)}, got {hat_preset!r}")
    if out.exists() and not force:
        _fail(f"{out} exists; pass --force to overwrite it or --out to choose another file")
    with _user_errors(), _progress(enabled=True) as hook:
        if dataset not in RECIPES:
            raise ValueError(f"unknown dataset {dataset!r}; allowed: {', '.join(RECIPES)}")
        r = RECIPES[dataset]
        report = hook or (lambda a, t, d: None)
        x_tr, y_tr, x_te, y_te = load_dataset(dataset, root=data_root, seed=seed)
        if method in METHODS:  # on-chip: an MLP whose weights are updated by pulses
            chip = chip or "rram-1t1r"
            with _num_threads(r.get("threads")):
                res = fit_onchip(x_tr, y_tr, chip=chip, method=method, hidden=hidden, epochs=epochs, lr=lr,
                                 seed=seed, progress=lambda a, t, _d: report(a, t, method), x_test=x_te, y_test=y_te)
            acc = res.test_accuracy
            meta = dict(dataset=dataset, method=method, chip=chip, seed=seed, model="mlp", test_accuracy=acc,
                        onchip=res.config, history=res.history)
            save_checkpoint(res.model.to_torch(), out, meta, overwrite=force)
            _out.print(f"saved {out} ({method} on {chip}, test accuracy {100 * acc:.2f} %); load it with "
                       f"aimc.train.onchip.load_mlp", highlight=False, soft_wrap=True)
            return
        chip = chip or "pcm-hermes"
        total = r["epochs"] + (epochs if method in ("hat", "hybrid") else 0)
        if init is not None:
            model = r["model"](seed=seed)
            load_into(model, None, load_checkpoint(init)[0])
        else:
            model = train_digital(r["model"](seed=seed), x_tr, y_tr, epochs=r["epochs"], lr=r["lr"],
                                  batch_size=r["batch_size"], seed=seed,
                                  progress=lambda a, _t, _d: report(a, total, "digital"))
        if method == "hybrid":  # fine-tune a deployed chip's digital parts; save the chip itself
            from aimc.nn.io import save_state
            from aimc.train.hybrid import deploy_and_finetune

            calib = torch.randperm(len(x_tr), generator=torch.Generator().manual_seed(seed + 7))[:n_calib]
            deployed, before, after = deploy_and_finetune(
                model, chip, x_tr[calib], y_tr[calib], x_te, y_te, chip_seed=chip_seed, t_s=deploy_time,
                parts=tuple(p.strip() for p in parts.split(",")), rank=rank, epochs=epochs, lr=r["lr"] / 3,
                batch_size=r["batch_size"], seed=seed, progress=lambda a, _t, _d: report(a, total, "on-device"))
            save_state(deployed, out, overwrite=force)
            _out.print(f"chip {chip_seed} of {chip} after {deploy_time:g} s: test accuracy {100 * before:.2f} % "
                       f"deployed, {100 * after:.2f} % after on-device fine-tuning of {parts}; saved the "
                       f"deployed chip to {out} (aimc.nn.load_state into a converted model with "
                       f"aimc.train.hybrid.add_adapters)", highlight=False, soft_wrap=True)
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
            load_into(model, None, saved.state_dict())  # the trained weights, digitally
        acc = accuracy(model, x_te, y_te)
        meta = dict(dataset=dataset, method=method, chip=chip, seed=seed, digital_test_accuracy=acc,
                    hat=None if cfg is None else cfg.to_dict())
        save_checkpoint(saved, out, meta, overwrite=force)
    _out.print(f"saved {out} ({method}, digital test accuracy {100 * acc:.2f} %); "
               f"evaluate on chips with: aimc demo --dataset {dataset} --checkpoint {out}", highlight=False, soft_wrap=True)


@app.command("chips")
def chips_cmd() -> None:
    """List the chip presets with a one-line description each."""
    for name in aimc.chips.names():
        try:
            text = " ".join(aimc.chips.load(name).description.split())
        except ConfigError as e:
            text = f"(invalid preset: {str(e).splitlines()[0]})"
        first = text.split(". ")[0].rstrip(".") + "."
        typer.echo(f"{name:<14} {first}")


@bench_app.command("train")
def bench_train_cmd(
    chip: str = typer.Option("rram-1t1r", help="Pulsed device of the on-chip rows (rram-1t1r or ecram)."),
    repeats: int = typer.Option(5, help="Timed epochs per row (median)."),
    warmup: int = typer.Option(1, help="Untimed epochs first."),
    name: Optional[list[str]] = typer.Option(None, "--name", help="Rows to time (repeatable; default all)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line per row."),
) -> None:
    """Time one training epoch of HAT and on-chip training against plain PyTorch (median ms, ratio)."""
    from aimc.bench import TRAIN_ROWS, bench_train

    with _user_errors():
        rows = bench_train(names=name or TRAIN_ROWS, chip=chip, repeats=repeats, warmup=warmup)
    if as_json:
        for r in rows:
            typer.echo(json.dumps(r))
        return
    table = Table(title=f"one digits training epoch vs plain PyTorch (median of {repeats}, {rows[0]['threads']} torch threads)")
    for col in ("name", "model", "ms/epoch", "digital ms/epoch", "ratio"):
        table.add_column(col, justify="left" if col in ("name", "model") else "right")
    for r in rows:
        table.add_row(r["name"], r["model"], f"{r['ms_per_epoch']:.1f}", f"{r['digital_ms_per_epoch']:.1f}", f"{r['ratio']:.2f}")
    _out.print(table)


@bench_app.command("mvm")
def bench_mvm_cmd(
    chip: str = typer.Option("pcm-hermes", help="Chip preset name or YAML file."),
    repeats: int = typer.Option(20, help="Timed passes per layer."),
    warmup: int = typer.Option(3, help="Untimed passes first."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line per shape."),
    shape: Optional[list[str]] = typer.Option(None, "--shape", hidden=True, help="IN x OUT x BATCH, repeatable."),
) -> None:
    """Time AnalogLinear against nn.Linear (median ms, analog/digital ratio)."""
    from aimc.bench import DEFAULT_SHAPES, bench_mvm, parse_shape

    with _user_errors():
        shapes = [parse_shape(s) for s in shape] if shape else DEFAULT_SHAPES
        rows = bench_mvm(shapes=shapes, chip=chip, repeats=repeats, warmup=warmup)
    if as_json:
        for r in rows:
            typer.echo(json.dumps(r))
        return
    table = Table(title=f"analog vs digital linear layer on {rows[0]['chip']} "
                        f"(median of {repeats}, {rows[0]['threads']} torch threads)")
    for col in ("in x out x batch", "analog (ms)", "digital (ms)", "ratio"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row("x".join(map(str, r["shape"])), f"{r['analog_ms']:.3f}", f"{r['digital_ms']:.3f}",
                      f"{r['ratio']:.1f}" if r["ratio"] is not None else "-")
    _out.print(table)


from aimc.cli.estimate import estimate_cmd  # noqa: E402  (uses _fail/_user_errors above)

app.command("estimate")(estimate_cmd)
