"""``aimc llm3d simulate`` / ``sweep-batch``: a decoder LLM (dense or mixture of experts) on a 3D AIMC chip.

Example:
    >>> from typer.testing import CliRunner
    >>> from aimc.cli.main import app
    >>> out = CliRunner().invoke(app, ["llm3d", "simulate", "--model", "dense-small", "--prompt", "2",
    ...                                "--generate", "2", "--json"]).stdout
    >>> import json; sorted(json.loads(out))[:3]
    ['J_per_token', 'area_mm2', 'attention']
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from aimc.cli.common import console, output_file, user_errors
from aimc.outputs import claim_output
from aimc.workloads.llm3d.api import load_density, simulate, sweep_batch, tier_map

__all__ = ["llm3d_app"]

llm3d_app = typer.Typer(help="Decoder LLMs (dense, mixture of experts) on 3D analog in-memory computing chips.",
                        no_args_is_help=True)

_MODEL_HELP = "Built-in model (dense-small, moe-small, moe-25b, ...) or CONFIG.json."
_MAPPING_HELP = "greedy_in_order | greedy_random | greedy_util | top2 | moe_separated."
_DENSITY_HELP = ("JSON expert-choice density (E, ExE co-activation, or one per layer), e.g. measured from a trained "
                 "router by benchmarks/moe_coactivation.py; routes the tokens and orders top2's placement.")


def _model(name: str) -> str | Path:
    return Path(name) if name.endswith(".json") else name


def _save(fig: Any, path: Path) -> None:
    from aimc.report.llm3d_plot import save_figure

    save_figure(fig, claim_output(path, if_exists="overwrite"))  # checked before the run; makes its folder


@llm3d_app.command("simulate")
def simulate_cmd(
    model: str = typer.Option(..., "--model", help=_MODEL_HELP),
    chip: str = typer.Option("3d-nvm", "--chip", help="A chip preset or YAML file with a tiers: section."),
    mapping: str = typer.Option("greedy_in_order", "--mapping", help=_MAPPING_HELP),
    tiles: Optional[int] = typer.Option(None, "--tiles", help="Override the chip's tile count (e.g. 175 for mixtral-8x7b)."),
    batch: int = typer.Option(1, "--batch", help="Sequences in flight."),
    prompt: int = typer.Option(16, "--prompt", help="Prompt tokens per sequence."),
    generate: int = typer.Option(16, "--generate", help="Tokens generated per sequence."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="Also price a GPU: gpu-h100 or gpu-a100."),
    attention: str = typer.Option("real", "--attention", help="real (priced) or stub (threedsim's 1 ns / 1 nJ)."),
    costs: str = typer.Option("chip", "--costs", help="chip (from the chip spec) or threedsim (its fixed constants)."),
    pos_embedding: int = typer.Option(0, "--pos-embedding", help="Rows of a positional table stored on the chip (threedsim: max length)."),
    no_kv_cache: bool = typer.Option(False, "--no-kv-cache", help="Recompute all tokens every step (threedsim default)."),
    density: Optional[Path] = typer.Option(None, "--density", help=_DENSITY_HELP),
    seed: int = typer.Option(0, "--seed", help="Seed of the expert draws and of greedy_random."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Save the tier-occupancy map (tiles x tiers, PNG)."),
    plot_tiers: Optional[int] = typer.Option(None, "--plot-tiers", help="Show only the lowest N tiers in --plot."),
    force: bool = typer.Option(False, "--force", help="Overwrite --plot if it exists."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Map the model on the chip's tiles x tiers, run the event simulation, print tokens/s,
    J/token, area, tile conflicts and utilisation (and the GPU's with --baseline)."""
    with user_errors():
        if plot is not None:
            plot = output_file(plot, "", force, option="--plot")
        dens = load_density(density) if density is not None else None
        place_kw: dict[str, Any] = dict(density=dens, seed=seed, pos_embedding_rows=pos_embedding, n_tiles=tiles)
        r = simulate(_model(model), chip, mapping, batch=batch, prompt=prompt, generate=generate, baseline=baseline,
                     kv_cache=not no_kv_cache, attention=attention, costs=costs, **place_kw)
        if plot is not None:
            from aimc.report.llm3d_plot import plot_tier_map

            _save(plot_tier_map(tier_map(_model(model), chip, mapping, **place_kw), max_tiers=plot_tiers), plot)
            r["plot"] = str(plot)
    if as_json:
        typer.echo(json.dumps(r))
        return
    typer.echo(f"{r['model']['name']} on {r['chip']} ({r['mapping']}), batch {batch}, {prompt}+{generate} tokens")
    for key in ("tokens_per_s", "J_per_token", "area_mm2", "tile_conflicts", "utilization"):
        vals = [r[key]] + ([r["baseline"][key]] if "baseline" in r else [])
        typer.echo(f"  {key:<15}" + "".join(f"{v:>14.4g}" for v in vals))
    if plot is not None:
        console.print(f"tier map saved to {plot}", highlight=False, soft_wrap=True)


@llm3d_app.command("sweep-batch")
def sweep_batch_cmd(
    model: list[str] = typer.Option(..., "--model", help=_MODEL_HELP + " Repeatable."),
    batch: Optional[list[int]] = typer.Option(None, "--batch", help="Batch sizes (repeatable; default 1 4 16 64)."),
    chip: str = typer.Option("3d-nvm", "--chip", help="A chip preset or YAML file with a tiers: section."),
    mapping: str = typer.Option("greedy_in_order", "--mapping", help=_MAPPING_HELP),
    tiles: Optional[int] = typer.Option(None, "--tiles", help="Override the chip's tile count."),
    prompt: int = typer.Option(16, "--prompt", help="Prompt tokens per sequence."),
    generate: int = typer.Option(16, "--generate", help="Tokens generated per sequence."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="Also price a GPU: gpu-h100 or gpu-a100."),
    attention: str = typer.Option("real", "--attention", help="real (priced) or stub (threedsim's 1 ns / 1 nJ)."),
    density: Optional[Path] = typer.Option(None, "--density", help=_DENSITY_HELP),
    seed: int = typer.Option(0, "--seed", help="Seed of the expert draws and of greedy_random."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Save tokens/s and J/token vs batch (PNG)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --plot if it exists."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Simulate each model at each batch size (and its GPU baseline); print or plot
    throughput and energy per token vs batch."""
    with user_errors():
        if plot is not None:
            plot = output_file(plot, "", force, option="--plot")
        dens = load_density(density) if density is not None else None
        r = sweep_batch([_model(m) for m in model], chip, mapping, batches=batch or [1, 4, 16, 64], baseline=baseline,
                        prompt=prompt, generate=generate, attention=attention, density=dens, seed=seed, n_tiles=tiles)
        if plot is not None:
            from aimc.report.llm3d_plot import plot_batch_sweep

            _save(plot_batch_sweep(r), plot)
            r["plot"] = str(plot)
    if as_json:
        typer.echo(json.dumps(r))
        return
    for name, row in r["models"].items():
        typer.echo(f"{name} on {r['chip']} ({r['mapping']})" + (f" vs {baseline}" if baseline else ""))
        for k, b in enumerate(r["batches"]):
            line = f"  batch {b:>4}: {row['tokens_per_s'][k]:>12.4g} tokens/s {1e3 * row['J_per_token'][k]:>10.4g} mJ/token"
            if baseline:
                g = row["baseline"]
                line += f"  | {g['tokens_per_s'][k]:>12.4g} tokens/s {1e3 * g['J_per_token'][k]:>10.4g} mJ/token"
            typer.echo(line)
    if plot is not None:
        console.print(f"plot saved to {plot}", highlight=False, soft_wrap=True)
