"""``aimc bench sort``: time the sort-in-memory simulator against ``numpy.sort``.

The timed run is :func:`aimc.workloads.sorting.sort_keys` end to end (encoding, programming
the array through the device model, sensing every cell, the trie engine's order and read
counts, the cost), on uniform ``bits``-bit keys; ``numpy_ms`` is ``np.sort`` of the same
keys; ``ratio = ms / numpy_ms``. Median of ``repeats`` runs.

Example:
    >>> r = bench_sort(keys=1000, repeats=1)
    >>> r["keys"], r["sorted_ok"]
    (1000, True)
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from aimc.experiments.common import num_threads
from aimc.workloads.sorting import sort_keys
from aimc.workloads.sorting.data import generate

__all__ = ["bench_sort"]


def bench_sort(keys: int = 1_000_000, bits: int = 32, strategy: str = "tns", states: int = 2, chip: str = "ideal",
               repeats: int = 3, seed: int = 0, threads: int | None = None) -> dict[str, Any]:
    """One JSON row: ``keys``, ``ms``, ``numpy_ms``, ``ratio`` and the sort's reads per key."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    x = generate("uniform", keys, bits, seed)
    import torch

    with num_threads(threads):
        n_threads = torch.get_num_threads()
        ts, tn = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            r = sort_keys(x, chip=chip, strategy=strategy, states=states, bits=bits, engine="trie", seed=seed)
            ts.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            np.sort(x)
            tn.append(time.perf_counter() - t0)
    ms, numpy_ms = 1e3 * float(np.median(ts)), 1e3 * float(np.median(tn))
    return {"keys": keys, "bits": bits, "strategy": strategy, "states": states, "chip": chip, "threads": n_threads,
            "ms": ms, "numpy_ms": numpy_ms, "ratio": ms / numpy_ms if numpy_ms > 0 else None,
            "reads_per_key": r.counts.reads / keys, "sorted_ok": r.sorted_ok}
