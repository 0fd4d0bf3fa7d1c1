"""Number files (property tests), generated data sets, the two applications."""
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aimc.workloads.sorting.apps import dijkstra_in_memory, prune_by_sort
from aimc.workloads.sorting.data import DISTRIBUTIONS, generate, read_numbers, write_numbers


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.lists(st.integers(-2 ** 63, 2 ** 63 - 1), min_size=1, max_size=30),
                 st.lists(st.floats(allow_nan=False), min_size=1, max_size=30)))
def test_number_file_round_trip(xs):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "k.txt"
        write_numbers(p, np.array(xs))
        back = read_numbers(p)
    assert back.tolist() == [float(x) for x in xs] if isinstance(xs[0], float) else back.tolist() == xs


@settings(max_examples=30, deadline=None)
@given(st.text(max_size=40))
def test_number_file_garbage_is_a_clear_error_or_numbers(text):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "k.txt"
        p.write_text(text)
        try:
            out = read_numbers(p)
        except ValueError as e:
            assert str(p) in str(e)
        else:
            assert out.ndim == 1 and out.size >= 1


@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_generated_sets(dist):
    x = generate(dist, 2000, 20, seed=4)
    assert x.dtype == np.uint64 and x.size == 2000 and int(x.max()) < 2 ** 20
    assert np.array_equal(x, generate(dist, 2000, 20, seed=4))
    if dist == "duplicates":
        assert np.unique(x).size <= 16
    if dist == "nearly-sorted":
        assert np.mean(np.diff(x.astype(np.int64)) >= 0) > 0.8


def test_dijkstra_matches_scipy():
    r = dijkstra_in_memory(n_nodes=80, radius=0.25, chip="ideal", seed=1)
    assert r["match"] and r["reached"] > 40 and r["reads_per_pop"] == 16


def test_pruning_mask_is_torch_topk():
    torch.manual_seed(0)
    lin = torch.nn.Linear(20, 10)
    w = lin.weight.detach().clone()
    prune_by_sort(lin, 0.7, chip="ideal")
    keep = w.numel() - int(0.7 * w.numel())
    want = torch.zeros(w.numel(), dtype=torch.bool)
    want[torch.topk(w.abs().reshape(-1), keep).indices] = True
    assert torch.equal(lin.weight.reshape(-1) != 0, want)
    with pytest.raises(ValueError, match="sparsity"):
        prune_by_sort(lin, 1.0)
