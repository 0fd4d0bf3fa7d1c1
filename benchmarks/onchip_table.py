"""Reproduce the README's on-chip training table: an MLP trained on-chip by pulses on the
pulsed devices of the ``rram-1t1r`` and ``ecram`` chips (their specs' ``pulsed:``
sections) with each update rule, against the same MLP trained digitally with plain SGD. Test accuracy, mean ± std over seeds.

Usage:
    python benchmarks/onchip_table.py                       # digits, 3 seeds, 30 epochs (~2 min)
    python benchmarks/onchip_table.py --dataset fashion-mnist --epochs 5 --hidden 128 --seeds 1 \
        --methods analog-sgd tiki-taka-v2                   # Fashion-MNIST (~4 min)

Hyper-parameters (``SETTINGS``) were chosen on a validation split of the training set
(the last 20 % of the digits training images), never on the test set.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from aimc.train.onchip import OnChipConfig, device_for, fit_digital, fit_onchip
from aimc.workloads.data import load_dataset

#: (method, options) per chip; lr of analog SGD chosen per chip on validation (0.02/0.05/0.1).
SETTINGS = {
    "rram-1t1r": [("analog-sgd", dict(lr=0.05)), ("mixed-precision", dict(lr=0.1)),
                  ("tiki-taka-v2", dict(lr=0.1)), ("c-ttv2", dict(lr=0.1, in_chop_prob=0.02))],
    "ecram": [("analog-sgd", dict(lr=0.1)), ("mixed-precision", dict(lr=0.1)),
              ("tiki-taka-v2", dict(lr=0.1)), ("c-ttv2", dict(lr=0.1, in_chop_prob=0.02))],
}


def _stats(accs: list[float]) -> tuple[float, float]:
    return 100 * statistics.mean(accs), 100 * (statistics.stdev(accs) if len(accs) > 1 else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--chips", nargs="+", default=list(SETTINGS))
    ap.add_argument("--methods", nargs="+", default=[m for m, _ in SETTINGS["ecram"]])
    ap.add_argument("--json", action="store_true", help="also print one JSON object per row")
    args = ap.parse_args()
    torch.set_num_threads(1)
    x, y, xt, yt = load_dataset(args.dataset, seed=0)
    seeds = range(args.seeds)
    rows = []

    def record(label, chip, results, settings):
        m, s = _stats([r.history[-1]["test_accuracy"] for r in results])
        sec = statistics.mean(sum(h["seconds"] for h in r.history) / len(r.history) for r in results)
        rows.append(dict(label=label, chip=chip, mean=round(m, 2), std=round(s, 2), s_per_epoch=round(sec, 3),
                         settings=settings))
        print(f"  {chip:<10} {label:<16} {m:6.2f} ± {s:4.2f} %   ({sec:.2f} s/epoch)", flush=True)

    t0 = time.time()
    print(f"{args.dataset}: MLP {x[0].numel()}-{args.hidden}-10, {args.epochs} epochs, batch 16, seeds {list(seeds)}")
    record("digital SGD", "-", [fit_digital(x, y, args.hidden, args.epochs, lr=0.1, seed=s, x_test=xt, y_test=yt)
                                for s in seeds], dict(lr=0.1, batch_size=16))
    for chip in args.chips:
        for method, opts in [(m, o) for m, o in SETTINGS[chip] if m in args.methods]:
            res = [fit_onchip(x, y, chip, method, args.hidden, args.epochs, seed=s, x_test=xt, y_test=yt, **opts)
                   for s in seeds]
            cfg = OnChipConfig(method=method, hidden=(args.hidden,), epochs=args.epochs, **opts)
            record(method, chip, res, {k: v for k, v in cfg.to_dict().items() if k != "_version"})
    print("\n| method | " + " | ".join(args.chips) + " |\n|---|" + "---|" * len(args.chips))
    dig = rows[0]
    print(f"| digital SGD (same MLP) | " + " | ".join(f"{dig['mean']:.2f} ± {dig['std']:.2f}" for _ in args.chips) + " |")
    for method in [m for m, _ in SETTINGS[args.chips[0]] if m in args.methods]:
        cells = [next(f"{r['mean']:.2f} ± {r['std']:.2f}" for r in rows if r["chip"] == c and r["label"] == method)
                 for c in args.chips]
        print(f"| {method} | " + " | ".join(cells) + " |")
    print("\ndevices (the chips' pulsed: sections): " + "; ".join(f"{c} {device_for(c).to_dict()}" for c in args.chips))
    print(f"total {time.time() - t0:.0f} s")
    if args.json:
        for r in rows:
            print(json.dumps(r))


if __name__ == "__main__":
    main()
