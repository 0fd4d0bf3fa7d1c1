"""``aimc bench compile``: how long compiling a large model takes (all-analog or energy
policy: no simulation), split into building the model and compiling it.

Example:
    >>> row = bench_compile("encoder:64,4,128,1", chip="pcm-hermes", threads=1)
    >>> row["params"], row["layers"], row["rounds"]
    (39434, 8, 1)
"""
from __future__ import annotations

import time
from typing import Any

from aimc.experiments.common import num_threads

__all__ = ["bench_compile"]

#: The default model: 8 encoder blocks of width 1024 (d_ff 4096): 100.9 M parameters.
LARGE = "encoder:1024,16,4096,8"


def bench_compile(model: str = LARGE, chip: str = "pcm-hermes", policy: str = "all-analog",
                  on_overflow: str = "multiplex", latency_us: float | None = None,
                  threads: int | None = None) -> dict[str, Any]:
    """Build ``model`` (:func:`aimc.workloads.compile_models.load_model`: initialise, one
    forward pass to measure its layers) and compile it (:func:`aimc.compile.compile_model`:
    assignment, partition, placement, pricing, schedule, plan, JSON text); wall-clock
    seconds of each part.

    Returns:
        ``{model, chip, policy, threads, params, layers, blocks, tiles, rounds, build_s,
        compile_s, json_s, total_s}``.
    """
    from aimc.chips import load
    from aimc.compile import compile_model
    from aimc.workloads.compile_models import load_model

    import torch

    spec = load(chip)
    with num_threads(threads):
        t0 = time.perf_counter()
        m = load_model(model, spec)
        t1 = time.perf_counter()
        plan = compile_model(m.work, spec, policy, spec=model, on_overflow=on_overflow, latency_us=latency_us,
                             n_params=m.n_params)
        t2 = time.perf_counter()
        text = plan.to_json()
        t3 = time.perf_counter()
        used = torch.get_num_threads()
    return {"model": model, "chip": spec.name, "policy": policy, "threads": used, "params": m.n_params,
            "layers": len(m.work), "blocks": len(plan.placement.layer), "tiles": plan.expected.tiles_used,
            "rounds": plan.expected.rounds, "plan_bytes": len(text), "build_s": t1 - t0, "compile_s": t2 - t1,
            "json_s": t3 - t2, "total_s": t3 - t0}
