"""The trie engine: the search engine's order and counts from the keys' trie, vectorised.

When every cell is sensed once (each digit read of a cell gives the same answer: ideal
devices, or programming spread, faults and retention without per-read noise), the whole
sequence of min searches of :mod:`~aimc.workloads.sorting.search` is fixed by the trie of
the sensed keys, and nothing needs to be read one search at a time:

* the order is the stable order of the sensed keys (duplicates in row order);
* search ``i`` (distinct key ``u_i`` in ascending order) restarts at the deepest recorded
  node with live keys; with unlimited states that is depth ``lcp(u_{i-1}, u_i)`` (the
  longest common digit prefix: the next minimum lies under it), so the search costs
  ``D - lcp`` reads. With ``k`` states the stack is replayed (one integer bitmask of depths
  per search, a loop over searches of a few integer operations);
* node ``(i, e)`` (depth ``e`` on ``u_i``'s path) *branches* when a live key with the same
  ``e``-digit prefix has a larger digit at ``e``: the last key with that prefix does;
* the candidates at that read are the rows from ``u_i`` to the last row with the prefix.

Tests check that both engines agree exactly (order, reads, cell reads, pushes). For a full
binary trie (all ``2**D`` keys) with unlimited states the total is ``2**(D+1) - 2`` reads.

Example:
    >>> import numpy as np
    >>> r = trie_sort(np.array([[1, 0], [0, 1], [0, 0], [1, 1]]), 2, states=2)
    >>> r.order.tolist(), r.reads
    ([2, 1, 0, 3], 6)
"""
from __future__ import annotations

import numpy as np

from aimc.workloads.sorting.search import SearchCounts

__all__ = ["trie_sort", "bit_length"]


def bit_length(z: np.ndarray) -> np.ndarray:
    """Bit length of each uint64 (0 for 0), exact, by binary search over shifts."""
    z = z.astype(np.uint64).copy()
    n = np.zeros(z.shape, dtype=np.int64)
    for s in (32, 16, 8, 4, 2, 1):
        big = z >= (np.uint64(1) << np.uint64(s))
        n += np.where(big, s, 0)
        z = np.where(big, z >> np.uint64(s), z)
    return n + (z > 0)


def trie_sort(digits: np.ndarray, n_levels: int, states: int = 0, descending: bool = False,
              top_k: int | None = None) -> SearchCounts:
    """Order and counts of repeated min searches over ``(n, D)`` sensed digits (module doc).

    Args:
        digits: the digit every read of each cell gives, ``(n, D)`` ints in ``[0, n_levels)``.
        n_levels: a power of two (2: binary cells, 4: two bits per cell, ...).
        states: recorded states ``k`` (0: bit-traversal; ``k >= D`` is unlimited).
        descending, top_k: as :func:`~aimc.workloads.sorting.search.search_sort`.
    """
    dig = np.asarray(digits)
    if dig.ndim != 2:
        raise ValueError(f"digits must be (rows, digits), got shape {dig.shape}")
    n, n_dig = dig.shape
    b = int(n_levels).bit_length() - 1
    if 1 << b != n_levels or n_dig * b > 64:
        raise ValueError(f"the trie engine needs n_levels a power of two and D*log2(n_levels) <= 64 bits, "
                         f"got n_levels={n_levels}, D={n_dig}")
    if states < 0:
        raise ValueError(f"states (recorded states) must be >= 0, got {states}")
    shifts = (np.arange(n_dig - 1, -1, -1, dtype=np.uint64) * np.uint64(b))
    key = np.zeros(n, dtype=np.uint64)
    for j in range(n_dig):  # pack the digits, one vector op per digit
        key = (key << np.uint64(b)) | dig[:, j].astype(np.uint64)
    if descending:
        key = ~key & np.uint64((1 << (n_dig * b)) - 1 if n_dig * b < 64 else 2 ** 64 - 1)
    order = np.argsort(key, kind="stable")
    sk = key[order]
    first = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])  # start row of each distinct key
    u = sk[first]
    cum = np.r_[first[1:], n]  # end row (exclusive) of each distinct key
    want = n if top_k is None else min(int(top_k), n)
    m = int(np.searchsorted(cum, want, side="left")) + 1  # searches needed
    lcp = (n_dig * b - bit_length(u[1:m] ^ u[: m - 1])) // b  # (m-1,) common digits with the previous key
    lasts = []
    branch = np.zeros(m, dtype=np.uint64)
    for e in range(n_dig):  # a loop over digits: inherent (one pass per trie level)
        pe = u >> np.uint64((n_dig - e) * b) if e else np.zeros_like(u)
        last = np.searchsorted(pe, pe[:m], side="right") - 1
        de = (u >> shifts[e]) & np.uint64(n_levels - 1)
        branch |= (de[last] > de[:m]).astype(np.uint64) << np.uint64(e)
        lasts.append(last)
    start = np.full(m, -1, dtype=np.int64)  # restart depth (-1: root, nothing recorded)
    pushes = 0
    if states >= n_dig and m > 1:
        start[1:] = lcp
    elif states > 0:
        s_mask, bl = 0, branch.tolist()
        for i in range(m):
            if i:
                s_mask &= (1 << (int(lcp[i - 1]) + 1)) - 1  # pop the dead (deeper) records
            d = s_mask.bit_length() - 1
            s_mask |= (bl[i] >> (d + 1)) << (d + 1)
            while s_mask.bit_count() > states:
                s_mask &= s_mask - 1  # drop the shallowest
            start[i] = d
    if states > 0:
        above = np.where(start >= 0, start + 1, 0).astype(np.uint64)
        new = (branch >> above) << above
        pushes = int(bit_length_popcount(new).sum())
    d0 = np.maximum(start, 0)
    cell_reads = 0
    for e in range(n_dig):
        active = cum[lasts[e]] - first[:m]  # rows under node (i, e) still live
        cell_reads += int(active[e >= d0].sum())
    reads_per = (n_dig - d0).tolist()
    out = order[:want]
    return SearchCounts(order=out, reads=int(sum(reads_per)), cell_reads=cell_reads, pushes=pushes,
                        searches=m, reads_per_search=reads_per)


def bit_length_popcount(z: np.ndarray) -> np.ndarray:
    """Set bits of each uint64."""
    return np.bitwise_count(z.astype(np.uint64)).astype(np.int64)
