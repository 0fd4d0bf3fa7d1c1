"""``aimc run plan.json``: execute a plan in the simulator, accuracy over chips and time.

Analog layers are converted onto the plan's chip, programmed (one chip per seed; seeds
start at 100, so the chips differ from the ones the compiler measured on), drifted to
each time and compensated; digital layers run exactly.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from aimc.cli.common import console, fail, pct, user_errors

__all__ = ["run_cmd"]

#: First programming seed of ``aimc run`` (the compiler measures on seeds 0, 1, ...).
SEED_BASE = 100


def run_cmd(
    plan_file: Path = typer.Argument(..., help="A plan from `aimc compile`."),
    data: str = typer.Option("test", help="Data to measure on: test (default) or calibration."),
    seeds: int = typer.Option(5, help="Chips (programming seeds) per time."),
    t: str = typer.Option("1s,1d,1y", "--t", help="Times since programming, comma-separated (e.g. 1h,1d,1y)."),
    data_root: Optional[Path] = typer.Option(None, help="Folder of the data files (fashion-mnist)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object to stdout."),
) -> None:
    """Run a plan in the simulator: accuracy mean ± std over chips at each time."""
    from aimc.cli.compile import parse_time_s
    from aimc.compile import load_plan
    from aimc.compile.check import check_model
    from aimc.compile.simulate import evaluate
    from aimc.experiments.common import mean_std, time_label
    from aimc.workloads.compile_models import load_model

    if seeds < 1:
        fail(f"--seeds must be >= 1, got {seeds}")
    if data not in ("test", "calibration"):
        fail(f"--data must be test or calibration, got {data!r}")
    with user_errors():
        times = [parse_time_s(s) for s in t.split(",") if s.strip()]
        if not times:
            raise ValueError("--t: give at least one time")
        plan, chip = load_plan(plan_file)
        onnx = plan.model.spec.lower().endswith(".onnx")
        m = load_model(plan.model.spec, chip, data_root=str(data_root) if data_root else None,
                       dataset=plan.model.dataset if onnx else None)
        check_model(plan, m.work, source=f"plan {plan_file}")
        pair = m.test if data == "test" else m.calibration
        if m.module is None or pair is None:
            raise ValueError(f"plan {plan_file}: model {plan.model.spec!r} has no weights or no data to run on "
                             "(a shape-only or untrained workload); compile a trained model")
        analog = {lp.name for lp in plan.layers if lp.assign == "analog"}
        seed_list = list(range(SEED_BASE, SEED_BASE + seeds))
        fp = evaluate(m.module, chip, set(), *pair, seeds=[0], times_s=[0.0])[0][0]
        accs = evaluate(m.module, chip, analog, *pair, seeds=seed_list, times_s=times)
    rows: list[dict[str, Any]] = [{"t_s": ts, "label": time_label(ts), "mean": mean_std(a)[0], "std": mean_std(a)[1], "per_chip": a}
            for ts, a in zip(times, accs)]
    if as_json:
        typer.echo(json.dumps({"plan": str(plan_file), "model": plan.model.spec, "chip": chip.name,
                               "policy": plan.options.policy, "data": data, "n": len(pair[1]), "fp": fp,
                               "energy_pJ": plan.expected.energy_pJ, "latency_ns": plan.expected.latency_ns,
                               "rows": rows}))
        return
    table = Table(title=f"{plan.model.spec} on {chip.name}, policy {plan.options.policy}: {data} accuracy (%), "
                        f"{len(analog)}/{len(plan.layers)} layers analog, {seeds} chips, compensated")
    for col in ("time", "digital (FP)", "plan"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["label"], f"{100 * fp:.2f}", pct(r["mean"], r["std"]))
    console.print(table)
    console.print(f"expected energy {plan.expected.energy_pJ:.4g} pJ/inference, latency "
                  f"{plan.expected.latency_ns:.4g} ns", highlight=False, soft_wrap=True)
