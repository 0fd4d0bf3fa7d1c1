"""sort_keys: exact on ideal devices (property tests), strategies, errors on real devices, bad input."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimc.workloads.sorting import STRATEGIES, encode_keys, sort_keys
from aimc.workloads.sorting.data import generate


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-2 ** 20, 2 ** 20), min_size=1, max_size=60), st.sampled_from(STRATEGIES),
       st.integers(0, 4), st.booleans())
def test_ints_equal_sorted(xs, strategy, k, desc):
    r = sort_keys(xs, chip="ideal", strategy=strategy, states=k, descending=desc, slice_digits=5)
    assert r.values.tolist() == sorted(xs, reverse=desc) and r.sorted_ok and r.inversions == 0


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(allow_nan=False, width=64), min_size=1, max_size=50), st.sampled_from(["tns", "multi-level"]),
       st.sampled_from(["search", "trie"]))
def test_floats_equal_sorted(xs, strategy, engine):
    r = sort_keys(xs, chip="ideal", strategy=strategy, engine=engine, bits=64 if strategy == "tns" else None)
    assert r.values.tolist() == sorted(xs)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=80), st.integers(1, 80))
def test_duplicates_and_top_k(xs, k):
    r = sort_keys(xs, chip="ideal", states=2, top_k=k, bits=2)
    assert r.values.tolist() == sorted(xs)[:k]


def test_encodings_preserve_order():
    xs = [0.0, -0.0, 1.5, -2.0, float("inf"), -float("inf"), 1e-300, -1e-300]
    k = encode_keys(xs)
    assert [xs[i] for i in np.argsort(k.keys, kind="stable")] == sorted(xs)
    ints = [-(2 ** 63), 2 ** 63 - 1, 0, -1]
    assert [ints[i] for i in np.argsort(encode_keys(ints, bits=64).keys, kind="stable")] == sorted(ints)
    assert encode_keys([1, 2], bits=8).kind == "uint" and encode_keys([-1], bits=8).keys.tolist() == [127]


def test_more_rows_than_one_array_use_banks():
    x = generate("uniform", 700, 12, seed=3)
    r = sort_keys(x, chip="ideal", bits=12)
    assert r.banks == 3 and r.values.tolist() == sorted(x.tolist())
    assert sort_keys(x, chip="ideal", strategy="multi-bank", banks=5, bits=12).banks == 5


def test_wide_keys_need_bit_slice():
    from aimc.chips import load
    small = load("ideal").model_copy(update={"cols": 16})
    with pytest.raises(ValueError, match="32 columns but the chip's arrays have 16.*bit-slice"):
        sort_keys([1, 2, 3], chip=small, bits=32)
    r = sort_keys([3, 1, 2], chip=small, bits=32, strategy="bit-slice", slice_digits=16)
    assert r.slices == 2 and r.values.tolist() == [1, 2, 3]


def test_tns_speed_up_and_cost_ordering():
    x = generate("clustered", 1024, 32, seed=0)
    bt = sort_keys(x, chip="ideal", strategy="bit-traversal", bits=32)
    tns = sort_keys(x, chip="ideal", strategy="tns", states=2, bits=32)
    assert bt.counts.reads == 32 * bt.counts.searches
    assert tns.counts.reads < bt.counts.reads
    assert tns.cost.time_ns < bt.cost.time_ns and tns.cost.energy_pJ < bt.cost.energy_pJ
    assert tns.cost.area_um2 > bt.cost.area_um2  # two recorded-state registers per row
    assert math.isclose(tns.digital.energy_pJ_per_key, bt.digital.energy_pJ_per_key)


def test_errors_grow_with_faults_and_noise():
    x = generate("uniform", 256, 16, seed=0)
    clean = dict(p_stuck=0.0, read_noise_rel=0.0, sigma_d2d=0.03)
    assert sort_keys(x, chip="rram-1t1r", bits=16, device=clean).errors == 0
    assert sort_keys(x, chip="rram-1t1r", bits=16, device={**clean, "p_stuck": 0.05}).errors > 50
    noisy = sort_keys(x, chip="rram-1t1r", bits=16, device={**clean, "read_noise_rel": 0.35})
    assert noisy.engine == "search" and noisy.errors > 0
    # multi-level cells: a quarter of the margin, errors at a noise binary cells shrug off
    mild = {**clean, "read_noise_rel": 0.1}
    assert sort_keys(x, chip="rram-1t1r", bits=16, device=mild).errors == 0
    assert sort_keys(x, chip="rram-1t1r", bits=16, device=mild, strategy="multi-level").errors > 0


@pytest.mark.parametrize("kw, match", [
    (dict(values=[]), "empty"),
    (dict(values=[1.0, float("nan")]), "index 1"),
    (dict(values=[1, 2], strategy="quick"), "unknown strategy"),
    (dict(values=[1, 2], engine="gpu"), "unknown engine"),
    (dict(values=[1, 2], sense="x"), "sense"),
    (dict(values=[300], bits=8), "do not fit"),
    (dict(values=[1.5], bits=16), "32 or 64"),
    (dict(values=["a"]), "integers or floats"),
    (dict(values=[1, 2], device={"bogus": 1}), "no field 'bogus'"),
    (dict(values=[1, 2], states=-1), "states"),
])
def test_bad_input(kw, match):
    values = kw.pop("values")
    with pytest.raises(ValueError, match=match):
        sort_keys(values, chip="rram-1t1r", **kw)


@pytest.mark.parametrize("desc", [False, True])
def test_wired_or_sensing_sorts_exactly_on_ideal_devices(desc):
    x = generate("clustered", 300, 16, seed=2)
    r = sort_keys(x, chip="ideal", bits=16, sense="current", descending=desc)
    assert r.engine == "search" and r.values.tolist() == sorted(x.tolist(), reverse=desc)
