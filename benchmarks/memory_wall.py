"""Reproduce the README's memory-wall numbers and figure, and the analog / digital IMC / GPU table.

    python benchmarks/memory_wall.py [--out FILE [--force]]   # default memory_wall.png, numbered on a rerun

Prints, for a 2048 x 2048 int8 layer (it fills pcm-hermes's 64 tiles exactly) and for a transformer block (d=512, 8 heads, d_ff=2048,
128 tokens) on the A100 preset, the share of energy and time spent moving weights at batch
1 ... 2048, then the comparison table (``python -m aimc.experiments.cost_compare`` alone prints only
the table). Runs on one CPU thread in a few seconds; no network, no GPU.
"""
from __future__ import annotations

import argparse

import torch

from aimc.graph.builders import mlp_workload, transformer_block_workload
from aimc.experiments.cost_compare import compare, format_table
from aimc.experiments.memory_wall import memory_wall
from aimc.outputs import claim_output
from aimc.report.memory_wall_plot import plot_memory_wall

BATCHES = (1, 8, 64, 512, 2048)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="figure path (PNG); default memory_wall.png, numbered if taken")
    ap.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    args = ap.parse_args()
    try:
        args.out = claim_output(args.out or "memory_wall.png",
                                if_exists="number" if args.out is None else "overwrite" if args.force else "error",
                                hint="pass --force to overwrite it or --out to choose another file")
    except (FileExistsError, ValueError) as e:
        ap.error(str(e))  # one line, exit code 2
    torch.set_num_threads(1)
    for name, work in (("linear 2048x2048", mlp_workload([2048, 2048])),
                       ("transformer block", transformer_block_workload())):
        r = memory_wall(work, "gpu-a100", batches=BATCHES, analog="pcm-hermes")
        print(f"\n{name} on {r['baseline']} ({r['precision']}); analog pcm-hermes: "
              + (f"{r['analog']['energy_pJ'] * 1e-6:.3g} uJ/inference" if r["analog"] else "n/a"))
        print("batch | energy/inf (uJ) | weight movement | + idle while streaming | weight time | TOPS/W")
        for i, b in enumerate(r["batch"]):
            print(f"{b:5d} | {r['energy_pJ'][i] * 1e-6:15.3g} | {r['weight_energy_share'][i]:15.1%} | "
                  f"{r['weight_energy_share_incl_static'][i]:22.1%} | {r['weight_time_share'][i]:11.1%} | "
                  f"{r['tops_per_w'][i]:.3g}")
        if name.startswith("linear"):
            plot_memory_wall(memory_wall(work, "gpu-a100", analog="pcm-hermes"),
                             title="2048 x 2048 int8 layer: A100 vs analog").savefig(args.out, dpi=120)
    print()
    print(format_table(compare()))
    print(f"\nfigure: {args.out}")


if __name__ == "__main__":
    main()
