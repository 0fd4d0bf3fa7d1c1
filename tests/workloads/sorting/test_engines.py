"""The two engines agree exactly; read counts against analytic and brute-force counts."""
import numpy as np
import pytest
import torch

from aimc.chips import load
from aimc.tiles.sense import program_digits
from aimc.workloads.sorting import search_sort, to_digits, trie_sort
from aimc.workloads.sorting.data import DISTRIBUTIONS, generate


def _reference_reads(keys, n_dig, base, k):
    """Brute force on Python ints, written independently of both engines: a stack of
    (depth, set of keys) recorded at branching reads, at most k, shallowest dropped."""
    dig = lambda x, j: (x // base ** (n_dig - 1 - j)) % base  # noqa: E731
    live = sorted(set(keys))
    stack, reads = [], 0
    while live:
        while stack and not (stack[-1][1] & set(live)):
            stack.pop()
        d, cand = (stack[-1][0], stack[-1][1] & set(live)) if stack else (-1, set(live))
        for j in range(max(d, 0), n_dig):
            m = min(dig(x, j) for x in cand)
            keep = {x for x in cand if dig(x, j) == m}
            reads += 1
            if k and j > d and keep != cand:
                stack.append((j, cand))
                if len(stack) > k:
                    stack.pop(0)
            cand = keep
        live.remove(cand.pop())
    return reads


def _ideal(d, levels):
    return program_digits(d, levels, load("ideal").device, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("seed", range(12))
def test_engines_agree_and_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, bits, bpc = int(rng.integers(1, 40)), int(rng.integers(1, 9)), int(rng.choice([1, 2]))
    vals = rng.integers(0, 2 ** bits, n).astype(np.uint64)
    d = to_digits(vals, bits, bpc)
    arr = _ideal(d, 2 ** bpc)
    for k in (0, 1, 2, 3, 64):
        for desc in (False, True):
            a = search_sort(arr, states=k, descending=desc)
            b = trie_sort(d.numpy(), 2 ** bpc, states=k, descending=desc)
            ref = sorted(range(n), key=lambda i: (-int(vals[i]) if desc else int(vals[i]), i))
            assert a.order.tolist() == ref == b.order.tolist()
            assert (a.reads, a.cell_reads, a.pushes, a.searches) == (b.reads, b.cell_reads, b.pushes, b.searches)
        assert search_sort(arr, states=k).reads == _reference_reads([int(v) for v in vals], d.shape[1], 2 ** bpc, k)


@pytest.mark.parametrize("n_dig", [1, 4, 8])
def test_full_trie_unlimited_states_reads_every_node_once(n_dig):
    """All 2**D keys, unlimited states: search m restarts at depth D - 1 - tz(m): 2**(D+1) - 2 reads."""
    d = to_digits(np.arange(2 ** n_dig, dtype=np.uint64), n_dig, 1).numpy()
    assert trie_sort(d, 2, states=n_dig).reads == 2 ** (n_dig + 1) - 2
    assert trie_sort(d, 2, states=0).reads == n_dig * 2 ** n_dig  # bit-traversal: D per key


def test_bit_traversal_reads_d_per_distinct_key():
    vals = np.array([5, 5, 1, 7, 1, 1], dtype=np.uint64)
    r = trie_sort(to_digits(vals, 3, 1).numpy(), 2, states=0)
    assert (r.reads, r.searches) == (3 * 3, 3)


@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_tns_reads_fewer(dist):
    d = to_digits(generate(dist, 1024, 32, seed=0), 32, 1).numpy()
    r = [trie_sort(d, 2, states=k).reads for k in (0, 1, 2, 4, 32)]
    assert r[0] == 32 * trie_sort(d, 2, states=0).searches
    assert r[0] > r[1] >= r[2] >= r[3] >= r[4]


def test_multilevel_trie_has_half_the_levels():
    vals = generate("uniform", 500, 32, seed=1)
    d2, d4 = to_digits(vals, 32, 1).numpy(), to_digits(vals, 32, 2).numpy()
    assert d4.shape[1] == 16
    a, b = trie_sort(d2, 2, states=0), trie_sort(d4, 4, states=0)
    assert np.array_equal(a.order, b.order) and b.reads * 2 == a.reads
    assert trie_sort(d4, 4, states=2).reads < trie_sort(d2, 2, states=2).reads


def test_top_k_and_live_rows():
    vals = np.array([9, 3, 7, 3, 1], dtype=np.uint64)
    d = to_digits(vals, 4, 1)
    arr = _ideal(d, 2)
    assert search_sort(arr, states=2, top_k=2).order.tolist() == [4, 1]
    assert trie_sort(d.numpy(), 2, states=2, top_k=2).order.tolist() == [4, 1]
    live = torch.tensor([True, False, True, False, False])
    assert search_sort(arr, top_k=1, live=live).order.tolist() == [2]
    with pytest.raises(ValueError, match="top_k"):
        search_sort(arr, top_k=0)
    with pytest.raises(ValueError, match="sense"):
        search_sort(arr, sense="magic")
