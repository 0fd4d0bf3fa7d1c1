"""``aimc demo``: the main job (train, deploy on drifting chips, table and plot)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from aimc.cli.common import console, fail, pct, progress_bar, user_errors

__all__ = ["demo"]


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
    from aimc.experiments.demo import run_demo
    from aimc.report.demo_plot import plot_demo

    if chips < 1:
        fail(f"--chips must be >= 1, got {chips}")
    if out.exists() and not force:
        fail(f"{out} exists; pass --force to overwrite it or --out to choose another file")
    with user_errors(), progress_bar(enabled=True) as hook:
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
        table.add_row(row["label"], f"{100 * fp:.2f}", pct(row["no_gdc_mean"], row["no_gdc_std"]),
                      pct(row["gdc_mean"], row["gdc_std"]))
    console.print(table)
    console.print(f"plot saved to {out} ({result['elapsed_s']:.1f} s)", highlight=False, soft_wrap=True)
