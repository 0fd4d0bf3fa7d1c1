"""``aimc demo``: the main job (train, deploy on drifting chips, table and plot)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from aimc.cli.common import console, fail, output_file, pct, progress_bar, user_errors

__all__ = ["demo"]


def demo(
    dataset: Optional[str] = typer.Option(None, help="Data set: digits (default) or fashion-mnist; with --checkpoint: "
                                                      "the checkpoint's."),
    chip: Optional[str] = typer.Option(None, help="Chip preset name (see `aimc chips`) or a YAML file; default "
                                                  "pcm-hermes, with --checkpoint the chip it was trained for."),
    chips: Optional[int] = typer.Option(None, help="Number of chip instances (programming seeds), >= 1; default 10 "
                                                   "(a programmed-chip checkpoint: its one chip)."),
    seed: int = typer.Option(0, help="Seed of the split, training and chips."),
    out: Optional[Path] = typer.Option(None, help="Where to save the accuracy-vs-time plot (PNG); default "
                                                  "aimc-demo.png, numbered aimc-demo-1.png, ... if taken."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    as_json: bool = typer.Option(False, "--json", help="Print only the JSON result to stdout."),
    max_test: Optional[int] = typer.Option(None, help="Evaluate on at most this many test images."),
    data_root: Optional[Path] = typer.Option(None, help="Folder of the data files (fashion-mnist)."),
    checkpoint: Optional[Path] = typer.Option(None, help="Evaluate a checkpoint of `aimc train` instead of "
                                                         "training: trained weights on new chips, or a programmed "
                                                         "chip as saved."),
) -> None:
    """Train a CNN, run it on drifting analog chips from 1 s to 1 year, table and plot."""
    from aimc.experiments.demo import run_demo
    from aimc.report.demo_plot import plot_demo

    if chips is not None and chips < 1:
        fail(f"--chips must be >= 1, got {chips}")
    with user_errors():
        path = output_file(out, "aimc-demo.png", force)
    with user_errors(), progress_bar(enabled=True) as hook:
        result = run_demo(dataset=dataset, chip=chip, n_chips=chips, seed=seed, progress=hook,
                          root=data_root, max_test=max_test, checkpoint=checkpoint)
        if out is None:  # the default name: still free, or the next number
            path = output_file(None, "aimc-demo.png", force)
        plot_demo(result, path)
    result["plot"] = str(path)
    if as_json:
        typer.echo(json.dumps(result))
        return
    fp = result["fp_accuracy"]
    chips_text = (f"the saved chip (seed {result['chip_seeds'][0]})" if result["programmed"]
                  else f"mean ± std over {result['n_chips']} chip{'s' if result['n_chips'] != 1 else ''}")
    table = Table(title=f"{result['dataset']} model ({result['n_params']:,} params, {result['method']} training) "
                        f"on {result['chip']}: test accuracy (%), {chips_text}, {result['n_test']} images")
    for col in ("time", "digital (FP)", "no compensation", "with GDC"):
        table.add_column(col, justify="left" if col == "time" else "right")
    for row in result["rows"]:
        table.add_row(row["label"], f"{100 * fp:.2f}", pct(row["no_gdc_mean"], row["no_gdc_std"]),
                      pct(row["gdc_mean"], row["gdc_std"]))
    console.print(table)
    console.print(f"plot saved to {path} ({result['elapsed_s']:.1f} s)", highlight=False, soft_wrap=True)
