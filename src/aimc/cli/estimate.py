"""``aimc estimate MODEL``: energy, latency, throughput and area of a model on a chip.

Example:
    >>> from typer.testing import CliRunner
    >>> from aimc.cli.main import app
    >>> out = CliRunner().invoke(app, ["estimate", "mvm:256x256", "--json"]).stdout
    >>> import json; round(json.loads(out)["tops"], 1)
    64.0
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from aimc.cli.common import console, fail, output_file, user_errors
from aimc.outputs import claim_output

__all__ = ["estimate_cmd"]


def estimate_cmd(
    model: str = typer.Argument(..., help="digits-cnn, fashion-cnn, mvm:ROWSxCOLS[xN], transformer[:D,H,FF,SEQ], "
                                          "a .safetensors checkpoint from `aimc train`, or a plan.json from "
                                          "`aimc compile` (priced as placed and assigned; its chip)."),
    chip: str = typer.Option("pcm-hermes", help="Chip preset name (see `aimc chips`) or a YAML file."),
    baseline: Optional[str] = typer.Option(None, help="Also price a baseline: gpu-a100, gpu-h100, cpu-xeon, dimc-22nm (or a YAML file)."),
    batch: int = typer.Option(1, help="Batch size the baseline amortises weight reads over, >= 1."),
    phases: Optional[int] = typer.Option(None, help="Array reads per MVM, overriding the chip's cost.phases "
                                                    "(pcm-hermes: 1 = one-phase, 4 = four-phase high-precision mode)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object to stdout."),
    plot: Optional[Path] = typer.Option(None, help="Save a stacked-bar plot of the energy breakdown (PNG)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --plot if it exists."),
) -> None:
    """Price one inference: energy by component, latency, TOPS, TOPS/W, TOPS/mm²."""
    from aimc.chips import load
    from aimc.workloads.catalog import load_workload
    from aimc.cost.estimator import estimate
    from aimc.chips.cost_params import DEFAULT_SOURCES, CostConfig
    from aimc.report.cost_plot import plot_breakdown

    if batch < 1:
        fail(f"--batch must be >= 1, got {batch}")
    if model.endswith(".json"):
        if baseline is not None or phases is not None or plot is not None:
            fail("a plan is priced as compiled: --baseline, --phases and --plot apply to models, not plans")
        return _estimate_plan(Path(model), as_json)
    with user_errors():
        if plot is not None:
            plot = output_file(plot, "", force, option="--plot")
        spec = load(chip)
        if phases is not None:
            spec = spec.replace(cost=(spec.cost or CostConfig(sources=DEFAULT_SOURCES)).replace(phases=phases))
        report = estimate(load_workload(model, spec), spec, baseline=baseline, batch=batch)
        if plot is not None:
            plot_breakdown(report, claim_output(plot, if_exists="overwrite"))  # checked above; makes its folder
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
        return
    table = Table(title=f"{model} on {report.chip}: energy per inference (pJ) by component")
    for col in ("layer", *report.breakdown, "total", "latency (ns)", "tiles"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for lc in report.layers:
        table.add_row(lc.name, *(f"{lc.energy_pJ.get(k, 0.0):.3g}" for k in report.breakdown), f"{lc.total_pJ:.3g}",
                      f"{lc.latency_ns:.3g}", str(lc.tiles))
    console.print(table)
    console.print(f"total {report.energy_pJ:.4g} pJ, latency {report.latency_ns:.4g} ns, "
               f"{report.tops:.3g} TOPS pipelined (2·MACs / slowest layer's time; layers overlap), "
               f"{report.tops_latency:.3g} TOPS one inference at a time (2·MACs / latency), "
               f"{report.tops_per_w:.3g} TOPS/W, {report.tops_per_mm2:.3g} TOPS/mm² (pipelined), "
               f"chip {report.area_mm2:.3g} mm², "
               f"utilisation {100 * report.utilisation:.0f} %{'' if report.fits else ' (does not fit: reprogrammed)'}",
               highlight=False, soft_wrap=True)
    if report.baseline:
        b = report.baseline
        console.print(f"baseline {b['name']}: {b['energy_pJ']:.4g} pJ, {b['latency_ns']:.4g} ns, "
                   f"{b['tops_per_w']:.3g} TOPS/W ({b['energy_pJ'] / report.energy_pJ:.3g}x the energy)",
                   highlight=False, soft_wrap=True)
    if plot is not None:
        console.print(f"plot saved to {plot}", highlight=False, soft_wrap=True)


def _estimate_plan(path: Path, as_json: bool) -> None:
    """Price a plan with the compiler's own pricing (:func:`aimc.compile.check.price_plan`)."""
    from aimc.compile import load_plan
    from aimc.compile.check import price_plan

    with user_errors():
        plan, chip = load_plan(path)
        cost = price_plan(plan, chip)
    layers: list[dict[str, Any]] = [{"name": lc.name, "energy_pJ": lc.total_pJ, "latency_ns": lc.latency_ns, "tiles": lc.tiles}
              for lc in cost.layers]
    if as_json:
        typer.echo(json.dumps({"plan": str(path), "chip": chip.name, "energy_pJ": cost.energy_pJ,
                               "latency_ns": cost.latency_ns, "throughput_inf_per_s": cost.throughput_inf_per_s,
                               "area_mm2": cost.area_mm2, "rounds": len(cost.rounds),
                               "reprogram_energy_pJ": cost.reprogram_energy_pJ,
                               "reprogram_time_ns": cost.reprogram_time_ns, "breakdown": cost.breakdown,
                               "layers": layers}))
        return
    table = Table(title=f"plan {path} ({plan.model.spec}, {plan.options.policy}) on {chip.name}: per inference")
    for col in ("layer", "energy (pJ)", "latency (ns)", "tiles"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for d in layers:
        table.add_row(d["name"], f"{d['energy_pJ']:.4g}", f"{d['latency_ns']:.4g}", str(d["tiles"]))
    console.print(table)
    console.print(f"total {cost.energy_pJ:.6g} pJ, latency {cost.latency_ns:.6g} ns, "
                  f"{cost.throughput_inf_per_s:.4g} inferences/s, {len(cost.rounds)} round(s)"
                  + (f", reprogramming {cost.reprogram_energy_pJ:.4g} pJ / {cost.reprogram_time_ns:.4g} ns"
                     if len(cost.rounds) > 1 else ""), highlight=False, soft_wrap=True)
