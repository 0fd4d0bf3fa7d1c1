"""Sorting in memory without comparators: Digit Read, Tree Node Skipping and cross-array
strategies on simulated 1T1R memristor arrays (Yu et al., Nature Electronics 8, 597 (2025),
arXiv:2309.10350; the column-skipping precursor arXiv:2202.10424).

The sensing of a column for a set of candidate rows is a read of its own and lives in
:mod:`aimc.tiles.sense`; the costs in :mod:`aimc.cost.sorting`. Here: key encodings
(:mod:`.encoding`), the per-search engine (:mod:`.search`), the vectorised trie engine
(:mod:`.trie`), the strategies and the user entry point (:mod:`.sorter`), and the two
application demos (:mod:`.apps`).

Example:
    >>> from aimc.workloads.sorting import sort_keys
    >>> sort_keys([3.5, -1.0, 2.25], chip="ideal").values.tolist()
    [-1.0, 2.25, 3.5]
"""
from aimc.workloads.sorting.encoding import Keys, encode_keys, to_digits
from aimc.workloads.sorting.search import SearchCounts, search_sort
from aimc.workloads.sorting.sorter import ENGINES, STRATEGIES, SortResult, sort_keys
from aimc.workloads.sorting.trie import trie_sort

__all__ = ["ENGINES", "STRATEGIES", "Keys", "SearchCounts", "SortResult", "encode_keys", "search_sort",
           "sort_keys", "to_digits", "trie_sort"]
