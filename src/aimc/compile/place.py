"""Placement: pack a model's blocks onto the chip's tiles, in rounds when it does not fit.

**What may share a tile.** Blocks on one tile occupy *disjoint rows and disjoint
columns*. A block's inputs then drive only its own rows and each column (and its ADC)
carries only its own block's current, so every block on a tile can be read in the same
cycle: the layers of the pipeline run concurrently, as they would on tiles of their own.
The cells where one block's rows cross another block's columns hold no weight: both
devices of each pair sit at ``g_min``, whose currents cancel in the differential read
(up to device variability). Blocks that shared rows (side by side) or columns (stacked)
would have to be read one after the other: time-multiplexed, which the pipeline cannot
afford, so this compiler does not do it.

Under that rule a set of blocks fits one ``rows x cols`` tile exactly when their heights
sum to at most ``rows`` and their widths to at most ``cols`` (placed corner to corner,
a staircase), so packing is two-dimensional *vector* bin packing. A block that uses all
rows or all columns of a tile (every block of a large matrix but its last row or column
of blocks) fills the tile on its own; the rest are packed by **first-fit decreasing**
(sorted by their larger relative side; each goes to the first open tile where it fits,
at that tile's next free row and column), the classic heuristic for vector bin packing
(its bin count is within a constant factor of optimal; Garey, Graham, Johnson and Yao,
J. Comb. Theory A 21, 257 (1976)).

**When the model does not fit.** ``on_overflow="fail"`` raises :class:`PlacementError`
(tiles needed, tiles on the chip). ``"multiplex"`` cuts the layers, in pipeline order,
into *rounds* that each fit the chip: a round's tiles are programmed, its layers run,
then the next round's weights are programmed over them (a layer larger than the whole
chip is split into rounds of whole output-block columns; of input blocks when even one
column does not fit, the partial sums accumulated digitally). The reprogramming is priced
by :mod:`aimc.compile.pricing` from the chip's ``program_*`` cost parameters.

Example:
    >>> from aimc.chips import load
    >>> from aimc.graph.workload import LayerWork
    >>> from aimc.compile.partition import partition
    >>> chip = load("pcm-hermes")
    >>> work = [LayerWork("a", "conv", 9, 16, 64), LayerWork("b", "conv", 144, 32, 16)]
    >>> p = place(partition(work, chip), chip)
    >>> p.tile.tolist(), p.row.tolist(), p.col.tolist()   # both on tile 0, corner to corner
    ([0, 0], [144, 0], [32, 0])
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from aimc.chips import ChipSpec
from aimc.compile.partition import Blocks

__all__ = ["OVERFLOW", "Placement", "PlacementError", "place", "SHARING", "utilisation"]

#: What to do when the model needs more tiles than the chip has.
OVERFLOW = ("fail", "multiplex")
#: The sharing rule, as stated in the plan.
SHARING = "disjoint rows and columns (concurrent reads)"


class PlacementError(ValueError):
    """The model does not fit the chip and multiplexing was not allowed."""


@dataclass(frozen=True)
class Placement:
    """Where each block sits: round, tile and the offsets of its first row and column.

    Attributes:
        round, tile, row, col: per block (same order as the :class:`Blocks`).
        tiles_per_round: tiles used in each round (``len`` = number of rounds).
    """

    round: np.ndarray
    tile: np.ndarray
    row: np.ndarray
    col: np.ndarray
    tiles_per_round: list[int]

    @property
    def n_rounds(self) -> int:
        return len(self.tiles_per_round)


def _first_fit(h: np.ndarray, w: np.ndarray, R: int, C: int, used_r: list[int], used_c: list[int],
               tile_of_bin: list[int], next_tile: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """First fit of blocks ``(h, w)`` (in the given order) into open tiles (bins), opening
    new ones as needed; updates the bin lists in place. Returns per block its tile, row
    and column offsets, and the next free tile index."""
    tile, row, col = (np.empty(h.size, dtype=np.int64) for _ in range(3))
    ur, uc = np.array(used_r, dtype=np.int64), np.array(used_c, dtype=np.int64)
    for k in range(h.size):  # only blocks smaller than a tile in both sides: few per layer
        fits = np.flatnonzero((ur + h[k] <= R) & (uc + w[k] <= C))
        if fits.size:
            b = int(fits[0])
        else:
            b = ur.size
            ur, uc = np.append(ur, 0), np.append(uc, 0)
            tile_of_bin.append(next_tile)
            next_tile += 1
        tile[k], row[k], col[k] = tile_of_bin[b], ur[b], uc[b]
        ur[b] += h[k]
        uc[b] += w[k]
    used_r[:], used_c[:] = ur.tolist(), uc.tolist()
    return tile, row, col, next_tile


def _exclusive(blocks: Blocks, chip: ChipSpec) -> np.ndarray:
    """Blocks that use all rows or all columns: they fill a tile alone."""
    return (blocks.rows >= chip.rows) | (blocks.cols >= chip.cols)


def _pack_ffd(blocks: Blocks, chip: ChipSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """One round: exclusive blocks on tiles ``0..E-1`` in block order, the others by FFD."""
    excl = _exclusive(blocks, chip)
    n = len(blocks)
    tile, row, col = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    e = int(excl.sum())
    tile[excl] = np.arange(e)
    small = np.flatnonzero(~excl)
    key = np.maximum(blocks.rows[small] / chip.rows, blocks.cols[small] / chip.cols)
    order = small[np.argsort(-key, kind="stable")]
    t, r, c, n_tiles = _first_fit(blocks.rows[order], blocks.cols[order], chip.rows, chip.cols, [], [], [], e)
    tile[order], row[order], col[order] = t, r, c
    return tile, row, col, n_tiles


def place(blocks: Blocks, chip: ChipSpec, on_overflow: Literal["fail", "multiplex"] = "fail") -> Placement:
    """Pack ``blocks`` onto ``chip``'s ``n_tiles`` tiles (module doc).

    Args:
        blocks: from :func:`~aimc.compile.partition.partition`.
        chip: the chip.
        on_overflow: ``"fail"`` or ``"multiplex"`` when one round does not hold the model.

    Raises:
        PlacementError: the model needs more tiles than the chip has and
            ``on_overflow="fail"``; ValueError: unknown ``on_overflow``.
    """
    if on_overflow not in OVERFLOW:
        raise ValueError(f"on_overflow must be one of {', '.join(OVERFLOW)}, got {on_overflow!r}")
    tile, row, col, needed = _pack_ffd(blocks, chip)
    if needed <= chip.n_tiles:
        return Placement(np.zeros(len(blocks), np.int64), tile, row, col, [needed] if len(blocks) else [])
    if on_overflow == "fail":
        raise PlacementError(f"the model needs {needed} tiles of {chip.rows}x{chip.cols}, chip {chip.name!r} has "
                             f"{chip.n_tiles} (n_tiles); choose a larger chip, keep layers digital, or pass "
                             "--on-overflow multiplex to reprogram the tiles in rounds")
    return _multiplex(blocks, chip)


@dataclass
class _Round:
    """The round being filled: next free tile, and its shared tiles' used rows/columns."""

    next: int = 0
    ur: list[int] = field(default_factory=list)
    uc: list[int] = field(default_factory=list)
    bins: list[int] = field(default_factory=list)


def _multiplex(blocks: Blocks, chip: ChipSpec) -> Placement:
    """Rounds of whole layers in order (first fit); a layer larger than the chip alone is
    chunked into rounds of whole output-block columns (or of input blocks)."""
    n, T = len(blocks), chip.n_tiles
    rnd, tile, row, col = (np.zeros(n, np.int64) for _ in range(4))
    excl = _exclusive(blocks, chip)
    bounds = np.flatnonzero(np.diff(blocks.layer, prepend=-1, append=-1))  # layer runs (blocks are grouped)
    tiles_per_round: list[int] = []
    cur = _Round()

    def close() -> None:
        nonlocal cur
        if cur.next:
            tiles_per_round.append(cur.next)
        cur = _Round()

    def add(idx: np.ndarray) -> bool:
        """Put blocks ``idx`` into the current round if they fit; True on success."""
        ex, sm = idx[excl[idx]], idx[~excl[idx]]
        ur, uc, bins = list(cur.ur), list(cur.uc), list(cur.bins)
        start = cur.next + ex.size
        t, r, c, nxt = _first_fit(blocks.rows[sm], blocks.cols[sm], chip.rows, chip.cols, ur, uc, bins, start)
        if nxt > T:
            return False
        rnd[idx] = len(tiles_per_round)
        tile[ex], row[ex], col[ex] = cur.next + np.arange(ex.size), 0, 0
        tile[sm], row[sm], col[sm] = t, r, c
        cur.next, cur.ur, cur.uc, cur.bins = nxt, ur, uc, bins
        return True

    for a, b in zip(bounds[:-1], bounds[1:]):
        idx = np.arange(a, b)
        if add(idx):
            continue
        close()
        if add(idx):
            continue
        # larger than the chip alone: chunks of whole columns (t_in blocks each), or of T blocks
        t_in = int(blocks.i_in[idx].max()) + 1
        if t_in <= T:  # whole output-block columns (blocks are ordered group, column, row)
            chunks = [idx[s: s + (T // t_in) * t_in] for s in range(0, idx.size, (T // t_in) * t_in)]
        else:  # one column at a time, T input blocks per round
            chunks = [idx[c + s: c + min(s + T, t_in)] for c in range(0, idx.size, t_in) for s in range(0, t_in, T)]
        for chunk in chunks:
            if not add(chunk):
                close()
                add(chunk)
    close()
    return Placement(rnd, tile, row, col, tiles_per_round)


def utilisation(blocks: Blocks, placement: Placement, chip: ChipSpec) -> tuple[float, float]:
    """``(used cells / cells of the used tiles, used cells / cells of the chip over all
    rounds)``; 0 for a model without analog blocks."""
    cells = float(blocks.cells.sum())
    per_tile = chip.rows * chip.cols
    used = sum(placement.tiles_per_round) * per_tile
    chip_cells = max(1, placement.n_rounds) * chip.n_tiles * per_tile
    return (cells / used if used else 0.0), cells / chip_cells
