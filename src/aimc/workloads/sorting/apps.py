"""Two applications of the in-memory sorter (as in arXiv:2309.10350): Dijkstra's shortest
paths with the in-memory min search as the priority queue, and magnitude pruning of a
network by in-memory top-k selection.

**Dijkstra**: one row per graph node holds its tentative distance (fixed-point, ``bits``
bits; unreached nodes hold the all-ones key). Each step is one in-memory min search over
the unsettled, reached rows (:func:`~aimc.workloads.sorting.search.search_sort` with
``top_k=1``; a write invalidates recorded states, so every search starts at the root: ``D``
reads); relaxing the settled node's edges rewrites the rows whose distance dropped
(reprogrammed through the device model). The graph is a random geometric graph (nodes
uniform in the unit square, edges between nodes closer than ``radius``, weights the
Euclidean lengths rounded to ``1/scale``); the reference is SciPy's Dijkstra on the same
integer weights.

**Pruning**: a network's weights of each layer are sorted by magnitude in memory (their
``|w|`` as binary32 keys, descending, ``top_k`` = the weights kept) and the others set to
zero; accuracy against sparsity. This is weight pruning after training (the paper prunes
in situ at run time; the selection step, top-k by in-memory sort, is the same).

Example:
    >>> r = dijkstra_in_memory(n_nodes=30, radius=0.4, chip="ideal", seed=0)
    >>> r["match"], r["reached"] > 1
    (True, True)
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from aimc.chips import load
from aimc.tiles.sense import program_digits
from aimc.workloads.sorting.encoding import to_digits
from aimc.workloads.sorting.search import search_sort
from aimc.workloads.sorting.sorter import sort_keys

__all__ = ["random_geometric_graph", "dijkstra_in_memory", "prune_by_sort", "pruning_table"]


def random_geometric_graph(n_nodes: int, radius: float, seed: int = 0, scale: int = 1000) -> np.ndarray:
    """Dense ``(n, n)`` int64 weight matrix (0 = no edge) of a random geometric graph."""
    if n_nodes < 2 or not 0 < radius <= 2:
        raise ValueError(f"need n_nodes >= 2 and 0 < radius <= 2, got {n_nodes}, {radius}")
    p = np.random.default_rng(seed).uniform(0, 1, (n_nodes, 2))
    d = np.linalg.norm(p[:, None] - p[None], axis=-1)
    return np.where((d < radius) & (d > 0), np.maximum(1, np.round(d * scale)), 0).astype(np.int64)


def dijkstra_in_memory(n_nodes: int = 200, radius: float = 0.15, chip: str = "rram-1t1r", bits: int = 16,
                       source: int = 0, seed: int = 0) -> dict[str, Any]:
    """Shortest path lengths from ``source`` with an in-memory priority queue (module doc).

    Returns a dict: ``match`` (every reachable distance equals SciPy's), ``mismatches``,
    ``reached`` nodes, ``reads`` (digit reads in all), ``reads_per_pop``.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    w = random_geometric_graph(n_nodes, radius, seed)
    ref = dijkstra(csr_matrix(w), directed=False, indices=source)
    inf_key = (1 << bits) - 1
    if np.isfinite(ref).any() and ref[np.isfinite(ref)].max() >= inf_key:
        raise ValueError(f"path lengths up to {ref[np.isfinite(ref)].max():.0f} do not fit {bits}-bit keys; raise bits")
    spec = load(chip)
    gen = torch.Generator().manual_seed(seed)
    dist = np.full(n_nodes, inf_key, dtype=np.uint64)
    dist[source] = 0
    arr = program_digits(to_digits(dist, bits), 2, spec.device, gen, read_noise=spec.noise.read_noise)
    settled = np.zeros(n_nodes, dtype=bool)
    reads = pops = 0
    while True:
        live = torch.from_numpy(~settled & (dist < inf_key))
        if not bool(live.any()):
            break
        r = search_sort(arr, states=0, top_k=1, generator=gen, live=live)
        u = int(r.order[0])
        reads += r.reads
        pops += 1
        settled[u] = True
        nbr = np.flatnonzero((w[u] > 0) & ~settled)
        new = dist[u] + w[u, nbr].astype(np.uint64)
        better = nbr[new < dist[nbr]]
        if better.size:
            dist[better] = np.minimum(dist[better], new[new < dist[nbr]])
            fresh = program_digits(to_digits(dist[better], bits), 2, spec.device, gen,
                                   read_noise=spec.noise.read_noise)  # rewrite the improved rows
            idx = torch.from_numpy(better)
            arr.state.g_uS[idx] = fresh.state.g_uS
            arr.state.drift[idx] = fresh.state.drift
            arr.g_read_uS[idx] = fresh.g_read_uS
    got = np.where(dist < inf_key, dist.astype(np.float64), np.inf)
    reach = np.isfinite(ref)
    mism = int(np.count_nonzero(got[reach] != ref[reach]) + np.count_nonzero(np.isfinite(got[~reach])))
    return {"nodes": n_nodes, "edges": int(np.count_nonzero(w) // 2), "reached": int(reach.sum()), "chip": chip,
            "bits": bits, "match": mism == 0, "mismatches": mism, "reads": reads,
            "reads_per_pop": reads / max(pops, 1)}


def prune_by_sort(model: nn.Module, sparsity: float, chip: str = "ideal", seed: int = 0) -> nn.Module:
    """Zero the ``sparsity`` fraction of smallest-magnitude weights of every Linear/Conv layer,
    choosing the kept ones by in-memory top-k (descending sort of ``|w|``, binary32 keys)."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (nn.Linear, nn.Conv2d)) and sparsity > 0:
                w = mod.weight.detach().reshape(-1)
                keep = max(1, w.numel() - int(sparsity * w.numel()))  # drop floor(s n)
                r = sort_keys(w.abs().numpy().astype(np.float32), chip=chip, strategy="tns", states=2, bits=32,
                              descending=True, top_k=keep, engine="trie", seed=seed)
                mask = torch.zeros(w.numel(), dtype=torch.bool)
                mask[torch.from_numpy(r.order)] = True
                mod.weight.mul_(mask.reshape(mod.weight.shape).to(mod.weight.dtype))
    return model


def pruning_table(sparsities: Sequence[float] = (0.0, 0.5, 0.7, 0.8, 0.9), chips: Sequence[str] = ("ideal", "rram-1t1r"),
                  epochs: int = 30, seed: int = 0) -> list[dict[str, Any]]:
    """Accuracy of the project's digits CNN (trained digitally, ``epochs`` full passes) on the
    digits test split after in-memory magnitude pruning, per chip and sparsity."""
    import copy

    from aimc.workloads.data import load_digits
    from aimc.workloads.models import digits_cnn

    x_tr, y_tr, x_te, y_te = load_digits(seed=seed)
    model = digits_cnn(seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(x_tr), generator=g)
        for i in range(0, len(perm), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(x_tr[b]), y_tr[b]).backward()
            opt.step()
    rows = []
    for chip in chips:
        for s in sparsities:
            m = prune_by_sort(copy.deepcopy(model), s, chip=chip, seed=seed).eval()
            with torch.no_grad():
                acc = float((m(x_te).argmax(1) == y_te).float().mean())
            rows.append({"chip": chip, "sparsity": s, "accuracy": acc})
    return rows
