"""Reproduce the docs' Long Range Arena table (docs/guide/kernel-attention.md).

One task per command: FP softmax vs FP kernel attention vs the kernel model on
``pcm-hermes`` without and with hardware-aware training, mean ± std over chips one day
after programming (:func:`aimc.experiments.lra.lra_table`).

Usage:
    python benchmarks/lra_table.py listops                 # the docs' reduced CPU budget
    python benchmarks/lra_table.py text
    python benchmarks/lra_table.py listops --budget paper --device cuda  # the paper's full settings
    python benchmarks/lra_table.py text --json
"""
from __future__ import annotations

import argparse
import json
import sys

from aimc.experiments.lra import RECIPES, lra_table, markdown


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", choices=tuple(RECIPES))
    ap.add_argument("--budget", default="cpu", help="cpu (default), paper, or tiny (listops)")
    ap.add_argument("--chip", default="pcm-hermes")
    ap.add_argument("--chips", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None, help="override the budget's FP epochs")
    ap.add_argument("--hat-epochs", type=int, default=None, help="override the budget's HAT epochs")
    ap.add_argument("--device", default="cpu", help="torch device, e.g. cuda for --budget paper")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    a = ap.parse_args()
    if a.budget not in RECIPES[a.task]:
        print(f"error: --budget must be one of {', '.join(RECIPES[a.task])} for {a.task}", file=sys.stderr)
        sys.exit(2)
    r = lra_table(a.task, a.budget, a.chip, a.chips, seed=a.seed, epochs=a.epochs, hat_epochs=a.hat_epochs,
                  device=a.device, progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(r, indent=1) if a.json else markdown(r))


if __name__ == "__main__":
    main()
