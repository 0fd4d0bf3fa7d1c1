"""Partition: each weight matrix into array-sized blocks, as the tiles store it.

The geometry is :class:`aimc.tiles.TileLayout`'s (the one the tile read, hardware-aware
training and the cost model use): a ``K x N`` matrix (``in x out``) with ``S`` slices per
weight sits on ``t_in = ceil(K / rows)`` by ``t_out = ceil(N / cols_w)`` tiles, where
``cols_w = cols // S`` weight columns fit in one tile (slice ``s`` of weight column ``c``
on physical column ``c * S + s``). Block ``(g, i, j)`` of a layer holds group ``g``'s rows
``i * rows_used ...`` and weight columns ``j * cols_w ...``: ``rows_used = ceil(K / t_in)``
used rows (fewer in the last input block) by ``S * (weight columns)`` used physical columns (fewer in the last output
block). Each used unit cell holds one differential pair, ``G+ - G-``, with
``devices_per_polarity`` devices per side (:class:`~aimc.chips.cost_params.CostConfig`), so
a block programs ``2 * devices_per_polarity * rows_used * cols_used`` devices.

Blocks are a structure of NumPy arrays (one entry per block), built without a Python loop
over blocks, so a 100 M-parameter model (tens of thousands of blocks) partitions in
milliseconds.

Example:
    >>> from aimc.chips import load
    >>> from aimc.graph.workload import LayerWork
    >>> b = partition([LayerWork("fc", "linear", 300, 20, 1)], load("pcm-hermes"))
    >>> b.rows.tolist(), b.cols.tolist(), b.i_in.tolist()
    ([150, 150], [20, 20], [0, 1])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from aimc.chips import ChipSpec
from aimc.graph.workload import LayerWork
from aimc.tiles import TileLayout

__all__ = ["Blocks", "partition", "layer_layout"]


@dataclass(frozen=True)
class Blocks:
    """Array-sized blocks of a model's analog layers (one entry per block).

    Attributes:
        layer: index of the block's layer in the workload.
        group: convolution group (0 for ungrouped layers).
        i_in: block index along the input (tile rows), ``0 .. t_in - 1``.
        j_out: block index along the output (tile columns), ``0 .. t_out - 1``.
        rows: used crossbar rows (inputs) of the block.
        cols: used physical columns (weight columns times slices).
    """

    layer: np.ndarray
    group: np.ndarray
    i_in: np.ndarray
    j_out: np.ndarray
    rows: np.ndarray
    cols: np.ndarray

    def __len__(self) -> int:
        return int(self.layer.size)

    @property
    def cells(self) -> np.ndarray:
        """Unit cells (differential pairs) each block uses."""
        return self.rows * self.cols

    def take(self, idx: np.ndarray) -> "Blocks":
        """The blocks at ``idx`` (an index or boolean array)."""
        return Blocks(*(getattr(self, f)[idx] for f in _FIELDS))


_FIELDS = ("layer", "group", "i_in", "j_out", "rows", "cols")


def layer_layout(w: LayerWork, chip: ChipSpec) -> TileLayout:
    """The tile layout of one layer's matrix (per convolution group) on ``chip``."""
    return TileLayout(int(w.in_features), int(w.out_features), chip.rows, chip.cols, chip.mapping.slices)


def partition(work: Sequence[LayerWork], chip: ChipSpec, analog: Sequence[bool] | None = None) -> Blocks:
    """Split every analog layer's matrix into blocks (module doc).

    Args:
        work: the model's layers (:func:`aimc.graph.extract_workload` or a capture).
        chip: the chip whose tiles hold the blocks.
        analog: per layer, whether it runs on the tiles (default: all); digital layers
            get no blocks.

    Returns:
        :class:`Blocks`, ordered by layer, then group, output block, input block.
    """
    analog = [True] * len(work) if analog is None else list(analog)
    if len(analog) != len(work):
        raise ValueError(f"partition: {len(analog)} analog flags for {len(work)} layers")
    S = chip.mapping.slices
    lays = [layer_layout(w, chip) for w in work]
    t_in = np.array([lay.t_in for lay in lays], dtype=np.int64)
    t_out = np.array([lay.t_out for lay in lays], dtype=np.int64)
    groups = np.array([w.groups for w in work], dtype=np.int64)
    K = np.array([w.in_features for w in work], dtype=np.int64)
    N = np.array([w.out_features for w in work], dtype=np.int64)
    per_layer = np.where(np.array(analog, dtype=bool), t_in * t_out * groups, 0)
    layer = np.repeat(np.arange(len(work), dtype=np.int64), per_layer)
    # position of each block inside its layer: k = (g * t_out + j) * t_in + i
    start = np.cumsum(per_layer) - per_layer
    k = np.arange(layer.size, dtype=np.int64) - start[layer]
    ti, to = t_in[layer], t_out[layer]
    i_in, j_out, group = k % ti, (k // ti) % to, k // (ti * to)
    ru = np.array([lay.rows_used for lay in lays], dtype=np.int64)  # the inputs split evenly over the input tiles
    rows = np.minimum(ru[layer], K[layer] - i_in * ru[layer])
    cols_w = chip.cols // S
    cols = np.minimum(cols_w, N[layer] - j_out * cols_w) * S
    return Blocks(layer, group, i_in, j_out, rows, cols)
