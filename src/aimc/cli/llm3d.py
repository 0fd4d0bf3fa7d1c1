"""``aimc llm3d simulate``: a decoder LLM (dense or mixture of experts) on a 3D AIMC chip.

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

import typer

from aimc.cli.common import user_errors
from aimc.workloads.llm3d.api import simulate

__all__ = ["llm3d_app"]

llm3d_app = typer.Typer(help="Decoder LLMs (dense, mixture of experts) on 3D analog in-memory computing chips.",
                        no_args_is_help=True)


@llm3d_app.command("simulate")
def simulate_cmd(
    model: str = typer.Option(..., "--model", help="Built-in model (dense-small, moe-small, moe-25b, ...) or CONFIG.json."),
    chip: str = typer.Option("3d-nvm", "--chip", help="A chip preset or YAML file with a tiers: section."),
    mapping: str = typer.Option("greedy_in_order", "--mapping",
                                help="greedy_in_order | greedy_random | greedy_util | top2 | moe_separated."),
    tiles: int | None = typer.Option(None, "--tiles", help="Override the chip's tile count (e.g. 175 for mixtral-8x7b)."),
    batch: int = typer.Option(1, "--batch", help="Sequences in flight."),
    prompt: int = typer.Option(16, "--prompt", help="Prompt tokens per sequence."),
    generate: int = typer.Option(16, "--generate", help="Tokens generated per sequence."),
    baseline: str | None = typer.Option(None, "--baseline", help="Also price a GPU: gpu-h100 or gpu-a100."),
    attention: str = typer.Option("real", "--attention", help="real (priced) or stub (threedsim's 1 ns / 1 nJ)."),
    costs: str = typer.Option("chip", "--costs", help="chip (from the chip spec) or threedsim (its fixed constants)."),
    pos_embedding: int = typer.Option(0, "--pos-embedding", help="Rows of a positional table stored on the chip (threedsim: max length)."),
    no_kv_cache: bool = typer.Option(False, "--no-kv-cache", help="Recompute all tokens every step (threedsim default)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the expert draws and of greedy_random."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Map the model on the chip's tiles x tiers, run the event simulation, print tokens/s,
    J/token, area, tile conflicts and utilisation (and the GPU's with --baseline)."""
    with user_errors():
        r = simulate(Path(model) if model.endswith(".json") else model, chip, mapping, batch=batch, prompt=prompt,
                     generate=generate, baseline=baseline, kv_cache=not no_kv_cache, attention=attention, seed=seed,
                     costs=costs, pos_embedding_rows=pos_embedding, n_tiles=tiles)
    if as_json:
        typer.echo(json.dumps(r))
        return
    typer.echo(f"{r['model']['name']} on {r['chip']} ({r['mapping']}), batch {batch}, {prompt}+{generate} tokens")
    for key in ("tokens_per_s", "J_per_token", "area_mm2", "tile_conflicts", "utilization"):
        vals = [r[key]] + ([r["baseline"][key]] if "baseline" in r else [])
        typer.echo(f"  {key:<15}" + "".join(f"{v:>14.4g}" for v in vals))
