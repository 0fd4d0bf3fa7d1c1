"""Reproduce the language-model tables of ``docs/guide/llm.md``.

``table``: SmolLM2-135M perplexity FP / pcm-hermes without HAT / after HAT by
self-distillation / 4-bit RTN (:func:`aimc.experiments.llm.llm_table`).
``rtn``: the FP and 4-bit RTN rows alone (:func:`aimc.experiments.llm.rtn_rows`).
``ablation``: each non-ideality switched off in turn, and alone
(:func:`aimc.experiments.llm.llm_ablation`).
``minilm``: all-MiniLM-L6-v2 embeddings' cosine similarity to FP over time
(:func:`aimc.experiments.llm.minilm_drift`).

Usage:
    python benchmarks/llm.py table --tokens 512   # HAT: 40 steps of 2 x 64 tokens, lr 5e-5
    python benchmarks/llm.py rtn --tokens 512
    python benchmarks/llm.py ablation --tokens 512
    python benchmarks/llm.py minilm --chips 3
"""
from __future__ import annotations

import argparse
import json
import sys

from aimc.experiments import llm


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("table", "rtn", "ablation", "minilm"))
    ap.add_argument("--chip", default="pcm-hermes")
    ap.add_argument("--tokens", type=int, default=None, help="tokens of held-out text scored")
    ap.add_argument("--hat-steps", type=int, default=40)
    ap.add_argument("--chips", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hat-batch", type=int, default=2)
    ap.add_argument("--hat-seq", type=int, default=64)
    ap.add_argument("--hat-lr", type=float, default=5e-5)
    ap.add_argument("--no-alone", action="store_true", help="ablation: skip the 'alone' rows")
    args = ap.parse_args(argv)
    kw = {} if args.tokens is None else {"tokens": args.tokens}
    if args.what == "table":
        out = llm.llm_table(chip=args.chip, hat_steps=args.hat_steps, hat_batch=args.hat_batch, hat_seq=args.hat_seq, hat_lr=args.hat_lr,
                            threads=args.threads, **kw)
    elif args.what == "rtn":
        out = llm.rtn_rows(threads=args.threads, **kw)
    elif args.what == "ablation":
        out = llm.llm_ablation(chip=args.chip, alone=not args.no_alone, threads=args.threads,
                               progress=lambda row: print(json.dumps(row), file=sys.stderr, flush=True), **kw)
    else:
        out = llm.minilm_drift(chip=args.chip, chips=args.chips, threads=args.threads)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
