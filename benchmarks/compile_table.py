"""Reproduce docs/compiler.md's table "Sensitivity against all-analog and all-digital, at 1
day": for each model and chip, the three policies compiled and run with the documented
commands, one markdown row per plan.

Each row is the two commands of the docs, run as subprocesses of this Python:

    aimc compile MODEL --chip CHIP --policy P [--budget 1%] -o plan.json   # sensitivity: 10 chips, 95 %
    aimc run plan.json --t 1d --seeds 5 --json                              # 5 other chips, test set

Usage:
    OMP_NUM_THREADS=1 python benchmarks/compile_table.py                    # both models, pcm-hermes + rram-1t1r
    OMP_NUM_THREADS=1 python benchmarks/compile_table.py --models digits-cnn --chips pcm-hermes ecram
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

POLICIES = ("all-digital", "all-analog", "sensitivity")
HEADER = ("| model | chip | policy | analog layers | test FP (%) | test plan, 1 day (%) | energy (nJ) | latency (ns) "
          "| calibration: plan / FP / all-analog (%) | calibration drop, 95 % bound (points) |\n"
          "|---|---|---|---|---|---|---|---|---|---|")


def _pt(fraction: float) -> str:
    """A fraction in points, 2 decimals, without a negative zero."""
    return f"{round(100 * fraction, 2) + 0.0:.2f}"


def _aimc(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "aimc.cli.main", *args], check=True, capture_output=True, text=True)
    return out.stdout


def row(model: str, chip: str, policy: str, folder: Path, budget: str, extra: list[str]) -> str:
    """Compile and run one plan; its markdown row."""
    plan_file = folder / f"{model}-{chip}-{policy}.json"
    args = ["compile", model, "--chip", chip, "--policy", policy, "-o", str(plan_file), "--force"]
    if policy == "sensitivity":
        args += ["--budget", budget, *extra]
    _aimc(*args)
    run = json.loads(_aimc("run", str(plan_file), "--t", "1d", "--seeds", "5", "--json"))
    plan = json.loads(plan_file.read_text())
    n_an = sum(lp["assign"] == "analog" for lp in plan["layers"])
    r = run["rows"][0]
    cal = bound = ""
    if plan.get("accuracy"):
        a = plan["accuracy"]
        cal = f"{100 * a['mean']:.2f} / {100 * a['fp']:.2f} / {100 * a['all_analog']:.2f}"
        bound = f"{_pt(a['fp'] - a['mean'])}, ≤ {_pt(a['drop_upper'])}"
    name = f"**{policy}**" if policy == "sensitivity" else policy
    return (f"| {model} | {chip} | {name} | {n_an}/{len(plan['layers'])} | {100 * run['fp']:.2f} | "
            f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f} | {run['energy_pJ'] / 1e3:.2f} | {run['latency_ns']:.4g} "
            f"| {cal} | {bound} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["digits-transformer", "digits-cnn"])
    ap.add_argument("--chips", nargs="+", default=["pcm-hermes", "rram-1t1r"])
    ap.add_argument("--budget", default="1%")
    ap.add_argument("--sensitivity-args", default="", help="extra options of the sensitivity compile, e.g. "
                                                            "'--seeds 3 --confidence 0.5'")
    args = ap.parse_args()
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            for chip in args.chips:
                for policy in POLICIES:
                    print(row(model, chip, policy, Path(tmp), args.budget, args.sensitivity_args.split()), flush=True)


if __name__ == "__main__":
    main()
