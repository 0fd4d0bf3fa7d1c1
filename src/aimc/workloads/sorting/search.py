"""The search engine: min searches by Digit Read, one read at a time, with Tree Node Skipping.

One **min search** over the live rows: start at a trie node (a digit position ``j`` and the
rows sharing its prefix), read column ``j`` of the candidates
(:func:`aimc.tiles.sense.sense_rows`), keep the candidates holding the smallest digit
present, go to ``j + 1``; after the last digit the candidates left are the minimum (all its
duplicates at once). Sorting repeats the search with the found rows masked out. No
comparator: each step is one array read and a mask update.

**Tree Node Skipping** with ``k`` recorded states: a read where candidates hold different
digits is a *branching* node of the keys' trie; the controller records it (digit position
and candidate mask) in a stack of at most ``k`` entries, dropping the shallowest when full.
The next search restarts at the deepest recorded node whose mask still holds a live row
(deeper, dead ones are popped) instead of at the root: the next minimum lies in it
(it is the deepest prefix of the last minimum that still has live keys). A search costs
``D - j`` reads from a restart at ``j``; ``k = 0`` is the baseline **bit-traversal**
(Prasad et al., HPCA 2021: ``D`` reads per search).

Exact per read: every read draws fresh read noise for its active cells, so a misread in one
search affects that search only. The cost is one tensor op per read over the candidates,
``O(reads x candidates)``; :mod:`~aimc.workloads.sorting.trie` gives the same order and
counts in a few vectorised passes when every cell is sensed once (noise-free reads).

Example:
    >>> import torch
    >>> from aimc.chips import load
    >>> from aimc.tiles.sense import program_digits
    >>> d = torch.tensor([[1, 0], [0, 1], [0, 0], [1, 1]])
    >>> arr = program_digits(d, 2, load("ideal").device, torch.Generator().manual_seed(0))
    >>> r = search_sort(arr, states=2)
    >>> r.order.tolist(), r.reads
    ([2, 1, 0, 3], 6)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from aimc.tiles.sense import DigitArray, column_exists, sense_rows

__all__ = ["SearchCounts", "search_sort", "SENSES"]

SENSES = ("row", "current")


@dataclass
class SearchCounts:
    """What a sort did.

    Attributes:
        order: row indices in output order (ascending keys, or descending), ``(n_out,)``.
        reads: digit reads (array read steps; one step reads all banks in parallel).
        cell_reads: active cells sensed, summed over reads (each active row's amplifier fires).
        pushes: recorded-state writes (one candidate mask each).
        searches: min searches (a search outputs all rows holding the minimum).
        reads_per_search: the reads of each search.
    """

    order: np.ndarray
    reads: int = 0
    cell_reads: int = 0
    pushes: int = 0
    searches: int = 0
    reads_per_search: list[int] = field(default_factory=list)


def search_sort(arr: DigitArray, states: int = 0, descending: bool = False, top_k: int | None = None,
                sense: str = "row", generator: torch.Generator | None = None,
                live: torch.Tensor | None = None) -> SearchCounts:
    """Sort the rows of a programmed digit array by repeated min (or max) searches.

    Args:
        arr: the programmed keys (:func:`aimc.tiles.sense.program_digits`).
        states: recorded states ``k`` of Tree Node Skipping (0: bit-traversal).
        descending: max searches (the controller keeps the largest digit present).
        top_k: stop once this many rows are output (min: 1; default all).
        sense: ``row`` (per-row amplifiers; the "a 0 exists" flag is their wired OR) or
            ``current`` (binary only: the flag from the summed column current,
            :func:`~aimc.tiles.sense.column_exists`; rows then drop by their own amplifier).
        generator: read noise (default seed 0).
        live: ``(rows,)`` bool, the rows taking part (default all): a priority queue's
            occupied entries.

    Returns:
        :class:`SearchCounts`; ``order`` lists every row (or the first ``top_k``) once.
    """
    if sense not in SENSES:
        raise ValueError(f"sense must be one of {', '.join(SENSES)}, got {sense!r}")
    if states < 0:
        raise ValueError(f"states (recorded states) must be >= 0, got {states}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    n, n_dig = arr.g_read_uS.shape
    live = torch.ones(n, dtype=torch.bool) if live is None else live.clone()
    n_live = int(live.sum())
    want = n_live if top_k is None else min(int(top_k), n_live)
    if want < 1:
        raise ValueError(f"top_k must be >= 1 and some row live, got top_k={top_k}, {n_live} live rows")
    top = arr.n_levels - 1
    stack: list[tuple[int, torch.Tensor]] = []
    out: list[torch.Tensor] = []
    res = SearchCounts(order=np.zeros(0, dtype=np.int64))
    done = 0
    while done < want:
        while stack and not bool(live[stack[-1][1]].any()):
            stack.pop()
        if stack:
            start, cand = stack[-1][0], stack[-1][1]
            cand = cand[live[cand]]
        else:
            start, cand = -1, live.nonzero().squeeze(1)
        for j in range(max(start, 0), n_dig):
            s = sense_rows(arr, j, cand, g)  # (m,)
            if descending:
                s = top - s
            best = s.min()
            if sense == "current":  # the flag from the column current; descending: "a 1 exists"
                flag = column_exists(arr, j, cand, g, digit=top if descending else 0)
                best = torch.zeros((), dtype=s.dtype) if flag else torch.ones((), dtype=s.dtype)
            keep = s == best
            res.reads += 1
            res.cell_reads += int(cand.numel())
            if not bool(keep.any()):  # the flag said "a 0 exists" but no amplifier saw one: keep all
                keep = torch.ones_like(keep)
            if states and j > start and not bool(keep.all()):
                stack.append((j, cand))
                res.pushes += 1
                if len(stack) > states:
                    stack.pop(0)
            cand = cand[keep]
        res.reads_per_search.append(n_dig - max(start, 0))
        res.searches += 1
        cand = cand[: want - done]
        live[cand] = False
        out.append(cand)
        done += int(cand.numel())
    res.order = torch.cat(out).numpy()
    return res
