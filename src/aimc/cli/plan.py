"""``aimc plan show plan.json``: a deployment plan as a table and a tile map.

Example:
    >>> import tempfile, pathlib
    >>> from typer.testing import CliRunner
    >>> from aimc.cli.main import app
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "plan.json"
    >>> _ = CliRunner().invoke(app, ["compile", "mvm:512x512", "-o", str(out)])
    >>> "round 0: A A A A" in CliRunner().invoke(app, ["plan", "show", str(out)]).stdout
    True
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from aimc.cli.common import console, output_file, user_errors

__all__ = ["plan_app", "summary_lines"]

plan_app = typer.Typer(help="Inspect deployment plans written by `aimc compile`.", no_args_is_help=True,
                       rich_markup_mode=None)


def summary_lines(plan) -> list[str]:
    """What a plan expects (and measured), in a few lines: tiles, energy, latency, accuracy."""
    e = plan.expected
    n_an = sum(lp.assign == "analog" for lp in plan.layers)
    lines = [f"{plan.model.spec} on {plan.chip.get('name')}, policy {plan.options.policy}: {n_an}/{len(plan.layers)} "
             f"layers analog, {e.tiles_used} tiles of {plan.chip.get('n_tiles')} in {e.rounds} round(s), "
             f"{plan.placement.replicas} replica(s); utilisation {100 * e.utilisation_used:.1f} % of used tiles, "
             f"{100 * e.utilisation_chip:.1f} % of the chip",
             f"energy {e.energy_pJ:.4g} pJ/inference (all digital {e.all_digital_energy_pJ:.4g} pJ), latency "
             f"{e.latency_ns:.4g} ns, {e.throughput_inf_per_s:.4g} inferences/s, bottleneck "
             f"{plan.schedule.bottleneck} ({plan.schedule.bottleneck_ns:.4g} ns)"
             + (f"; reprogramming {e.reprogram_energy_pJ:.4g} pJ and {e.reprogram_time_ns:.4g} ns per inference"
                if e.rounds > 1 else "")]
    if plan.accuracy is not None:
        a = plan.accuracy
        lines.append(f"accuracy on {a.data} ({a.n} samples) at t = {a.t_s:g} s over {a.seeds} chips: FP "
                     f"{100 * a.fp:.2f} %, plan {100 * a.mean:.2f} ± {100 * a.std:.2f} %"
                     + (f", all-analog {100 * a.all_analog:.2f} %" if a.all_analog is not None else "")
                     + (f"; drop {100 * (a.fp - a.mean):.2f} points, at most {100 * a.drop_upper:.2f} at "
                        f"{100 * plan.options.confidence:g} % confidence" if a.drop_upper is not None else ""))
    return lines


@plan_app.command("show")
def show(
    plan_file: Path = typer.Argument(..., help="A plan from `aimc compile`."),
    map_png: Optional[Path] = typer.Option(None, "--map", help="Also draw the tile map as a PNG."),
    width: int = typer.Option(32, help="Tiles per line of the text tile map."),
    force: bool = typer.Option(False, "--force", help="Overwrite --map if it exists."),
) -> None:
    """Print a plan: per-layer assignment and cost, totals, and the tile map."""
    from aimc.compile import load_plan
    from aimc.outputs import claim_output
    from aimc.report.plan_plot import plot_tile_map, tile_map_text

    with user_errors():
        if map_png is not None:
            map_png = output_file(map_png, "", force, option="--map")
        plan, chip = load_plan(plan_file)
        if width < 1:
            raise ValueError(f"--width must be >= 1, got {width}")
        if map_png is not None:
            plot_tile_map(plan, claim_output(map_png, if_exists="overwrite"))
    table = Table(title=f"{plan.model.spec} on {chip.name}, policy {plan.options.policy}")
    for col in ("layer", "shape", "runs", "sensitivity", "tiles", "energy (pJ)", "latency (ns)", "why"):
        table.add_column(col, justify="right" if col in ("tiles", "energy (pJ)", "latency (ns)", "sensitivity")
                         else "left")
    for lp in plan.layers:
        sens = "" if lp.sensitivity is None else f"{100 * lp.sensitivity:.2f} pt"
        shape = f"{lp.kind} {lp.in_features}x{lp.out_features}" + (f"x{lp.groups}g" if lp.groups > 1 else "")
        table.add_row(lp.name, shape, lp.assign, sens, str(lp.tiles), f"{lp.energy_pJ:.4g}", f"{lp.latency_ns:.4g}",
                      lp.reason)
    console.print(table)
    for line in summary_lines(plan):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(tile_map_text(plan, width), highlight=False, soft_wrap=True)
    if map_png is not None:
        console.print(f"tile map saved to {map_png}", highlight=False, soft_wrap=True)


@plan_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of plan files (what `aimc compile` writes)."""
    import json

    from aimc.compile.plan import shipped_schema

    typer.echo(json.dumps(shipped_schema(), indent=1))
