"""Partition follows TileLayout; placement packs blocks without overlap, by the sharing
rule (disjoint rows and columns), fails or multiplexes clearly when the chip is too small."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from aimc.chips import load
from aimc.compile.partition import partition
from aimc.compile.place import PlacementError, place, utilisation
from aimc.compile.pricing import price
from aimc.graph.workload import LayerWork
from aimc.tiles import TileLayout

HERMES = load("pcm-hermes")
ISAAC = load("isaac")  # 128x128, 8 slices: 16 weight columns per tile


@pytest.mark.parametrize("chip", [HERMES, ISAAC])
def test_partition_is_the_tile_layout(chip):
    work = [LayerWork("a", "linear", 300, 70, 1), LayerWork("b", "conv", 27, 40, 9, groups=3)]
    b = partition(work, chip)
    S = chip.mapping.slices
    for li, w in enumerate(work):
        lay = TileLayout(w.in_features, w.out_features, chip.rows, chip.cols, S)
        sel = b.layer == li
        assert sel.sum() == lay.n_tiles * w.groups
        # every weight (times its slices) is in exactly one block: cells add up exactly
        assert int(b.cells[sel].sum()) == w.in_features * w.out_features * S * w.groups
        assert b.rows[sel].max() <= chip.rows and b.cols[sel].max() <= lay.cols_w * S


def test_digital_layers_get_no_blocks():
    work = [LayerWork("a", "linear", 300, 70, 1), LayerWork("b", "linear", 70, 10, 1)]
    assert set(partition(work, HERMES, [False, True]).layer.tolist()) == {1}


def _check_rule(b, p, chip):
    """Blocks inside tiles, and blocks sharing a tile use disjoint rows and columns."""
    assert ((p.row + b.rows <= chip.rows) & (p.col + b.cols <= chip.cols)).all()
    assert (p.tile < chip.n_tiles).all()
    for r in range(p.n_rounds):
        for t in np.unique(p.tile[p.round == r]):
            k = np.flatnonzero((p.round == r) & (p.tile == t))
            for x in range(k.size):
                for y in range(x + 1, k.size):
                    i, j = k[x], k[y]
                    rows_apart = p.row[i] + b.rows[i] <= p.row[j] or p.row[j] + b.rows[j] <= p.row[i]
                    cols_apart = p.col[i] + b.cols[i] <= p.col[j] or p.col[j] + b.cols[j] <= p.col[i]
                    assert rows_apart and cols_apart
        assert len(np.unique(p.tile[p.round == r])) == p.tiles_per_round[r]


shapes = st.lists(st.tuples(st.integers(1, 700), st.integers(1, 600), st.integers(1, 3)), min_size=1, max_size=8)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(shapes)
def test_placement_obeys_the_sharing_rule(dims):
    work = [LayerWork(f"l{i}", "conv", k, n, g, groups=g) for i, (k, n, g) in enumerate(dims)]
    chip = load("rram-1t1r")  # 48 tiles: some of these do not fit
    b = partition(work, chip)
    p = place(b, chip, "multiplex")
    _check_rule(b, p, chip)
    assert all(0 < t <= chip.n_tiles for t in p.tiles_per_round)
    # never more tiles than one per block; one round whenever one-tile-per-block fits
    assert sum(p.tiles_per_round) <= len(b)
    if len(b) <= chip.n_tiles:
        assert p.n_rounds == 1


def test_small_blocks_share_one_tile_and_utilisation_is_exact():
    work = [LayerWork(f"l{i}", "linear", 64, 64, 1) for i in range(4)]  # 4 x (64x64) fit one 256x256 tile
    b = partition(work, HERMES)
    p = place(b, HERMES)
    assert p.tiles_per_round == [1]
    used, chip_u = utilisation(b, p, HERMES)
    assert used == 4 * 64 * 64 / 256 ** 2 and chip_u == used / HERMES.n_tiles


def test_overflow_fails_naming_the_counts():
    work = [LayerWork("big", "linear", 4096, 4096, 1)]  # 16 x 16 = 256 tiles of 256x256
    with pytest.raises(PlacementError, match=r"needs 256 tiles of 256x256, chip 'pcm-hermes' has 64"):
        place(partition(work, HERMES), HERMES, "fail")


def test_multiplex_rounds_and_reprogramming_energy():
    work = [LayerWork("big", "linear", 4096, 4096, 1), LayerWork("head", "linear", 4096, 10, 1)]
    b = partition(work, HERMES)
    p = place(b, HERMES, "multiplex")
    assert p.tiles_per_round == [64, 64, 64, 64, 16]
    cost = price(work, HERMES, set(), b, p)
    c = HERMES.cost
    devices = (4096 * 4096 + 4096 * 10) * 2 * c.devices_per_polarity  # every pair, every inference
    assert cost.reprogram_energy_pJ == pytest.approx(devices * c.program_pulses * c.program_pulse_pJ, rel=1e-12)
    assert cost.reprogram_time_ns == pytest.approx(5 * HERMES.rows * c.program_row_ns)
    assert cost.energy_pJ == pytest.approx(sum(r.energy_pJ for r in cost.rounds) + cost.reprogram_energy_pJ)
    # the parts of 'big' across rounds hold all its weights once
    macs = sum(lc.macs for r in cost.rounds for lc in r.layers if lc.name.startswith("big"))
    assert macs == 4096 * 4096


def test_a_column_taller_than_the_chip_is_split_along_the_input():
    chip = load("pcm-hermes").replace(n_tiles=4)
    work = [LayerWork("tall", "linear", 256 * 10, 100, 1)]
    b = partition(work, chip)
    p = place(b, chip, "multiplex")
    assert p.tiles_per_round == [4, 4, 2]
    _check_rule(b, p, chip)
