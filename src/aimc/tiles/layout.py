"""Tile geometry: how a weight matrix sits on crossbar tiles, and its slices.

A weight matrix ``W`` (out x in) is stored transposed on tiles of ``rows x cols`` unit
cells: inputs drive rows, outputs are column currents. Each weight takes ``S`` slices
(``mapping.slices``), each a differential pair on its own column, side by side (physical
column ``c * S + s`` of a tile holds slice ``s`` of its ``c``-th weight column, as ISAAC
puts a 16-bit weight on 8 adjacent 2-bit cells, Shafiee et al., ISCA 2016), so a tile
holds ``cols_w = cols // S`` weight columns. A matrix larger than one tile is split into
``t_in = ceil(in / rows)`` tiles along the input and ``t_out = ceil(out / cols_w)`` along
the output. The inputs are split evenly over the input tiles: each holds ``rows_used =
ceil(in / t_in)`` rows from the top (the last one up to ``t_in - 1`` fewer, as padding rows
that hold no weight: zero conductance, inputs zero); the physical rows below them, down to
the column sinks, are empty. An even split needs the same tiles as filling each tile in
turn (256 + 256 + 64 rows for 576 inputs on 256-row tiles) and balances the tiles' column
currents, and it lets every tensor of a layer (targets, device state, read matrices) hold
``t_in * rows_used`` rows, fewer than ``t_in`` of them padding, instead of ``t_in * rows``
(a third of them padding in that example): the tiles' empty rows are physics
(:mod:`aimc.tiles.irdrop` adds their wire in closed form), not storage.

This is the one geometry of the package: the tile read (:mod:`aimc.tiles.crossbar`),
IR drop (:mod:`aimc.tiles.irdrop`), hardware-aware training and the cost model take it
from here.

Example:
    >>> import torch
    >>> lay = TileLayout(in_features=300, out_features=20, rows=256, cols=256, slices=1)
    >>> lay.t_in, lay.t_out, lay.n_tiles, lay.rows_used, lay.pad_in
    (2, 1, 2, 150, 0)
    >>> lay.split_in(torch.ones(4, 300)).shape  # (T, B, rows_used)
    torch.Size([2, 4, 150])
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from aimc.physics.devices import quantise_to_levels

__all__ = ["TileLayout", "significance", "slice_parts", "programmed_levels"]


@dataclass(frozen=True)
class TileLayout:
    """How an ``out x in`` matrix sits on ``rows x cols`` tiles with ``slices`` slices (module doc).

    Raises:
        ValueError: a size below 1, or more slices than a tile has columns.
    """

    in_features: int
    out_features: int
    rows: int
    cols: int
    slices: int

    def __post_init__(self):
        for name in ("in_features", "out_features", "rows", "cols", "slices"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TileLayout.{name} must be >= 1, got {getattr(self, name)}")
        if self.slices > self.cols:
            raise ValueError(f"mapping.slices ({self.slices}) exceeds the tile's cols ({self.cols}): "
                             "each slice of a weight takes its own column")

    @property
    def cols_w(self) -> int:
        """Weight columns per tile (each takes ``slices`` physical columns)."""
        return self.cols // self.slices

    @property
    def t_in(self) -> int:
        """Tiles along the input (row direction)."""
        return -(-self.in_features // self.rows)

    @property
    def t_out(self) -> int:
        """Tiles along the output (column direction)."""
        return -(-self.out_features // self.cols_w)

    @property
    def n_tiles(self) -> int:
        """Physical tiles the matrix occupies."""
        return self.t_in * self.t_out

    @property
    def rows_used(self) -> int:
        """Rows each input tile holds (the last one up to ``t_in - 1`` fewer): ``ceil(in /
        t_in)``, at most ``rows``; the rows of every per-row tensor of the layer."""
        return -(-self.in_features // self.t_in)

    @property
    def pad_in(self) -> int:
        """Padding rows (no weight) of the last input tile, ``t_in * rows_used - in``."""
        return self.t_in * self.rows_used - self.in_features

    @property
    def utilisation(self) -> float:
        """Weights per allocated weight position (``in * out / (n_tiles * rows * cols_w)``)."""
        return self.in_features * self.out_features / (self.n_tiles * self.rows * self.cols_w)

    @classmethod
    def of(cls, weight_shape: tuple[int, ...], chip) -> "TileLayout":
        """The layout of a ``(out, in)`` weight on ``chip`` (a :class:`~aimc.chips.ChipSpec`)."""
        out_f, in_f = weight_shape
        return cls(int(in_f), int(out_f), chip.rows, chip.cols, chip.mapping.slices)

    def split_in(self, a: torch.Tensor) -> torch.Tensor:
        """``(..., in)`` -> ``(T, ..., rows_used)``: the part of each row that each input
        tile holds, zero-padded in the last tile."""
        if a.shape[-1] != self.in_features:
            raise ValueError(f"split_in: last dim must be in_features={self.in_features}, got shape {tuple(a.shape)}")
        if self.pad_in:
            a = F.pad(a, (0, self.pad_in))
        return a.unflatten(-1, (self.t_in, self.rows_used)).movedim(-2, 0)

    def used_rows(self, device=None) -> torch.Tensor:
        """``(T, rows_used)`` bool: True where a row holds a weight."""
        used = torch.zeros(self.t_in * self.rows_used, dtype=torch.bool, device=device)
        used[: self.in_features] = True
        return used.view(self.t_in, self.rows_used)


def significance(chip) -> list[float]:
    """Digital weight of each slice: ``1/S`` each for ``slice_base == 1`` (the weight split
    equally, noise averages out), else ``b^-k`` (bit slicing, residuals amplified by ``b``)."""
    s, b = chip.mapping.slices, chip.mapping.slice_base
    return [1.0 / s] * s if b == 1.0 else [b ** -k for k in range(s)]


def slice_parts(wn: torch.Tensor, chip) -> torch.Tensor:
    """Normalised weights ``wn`` in [-1, 1] (any shape) -> ``(S, *wn.shape)`` slices.

    ``slice_base == 1``: every slice holds ``wn``. ``b > 1``: slice ``k`` holds the residual
    ``r_k`` rounded to the device's ``n_levels`` (if it has levels; else exact, so the
    later slices hold 0), and ``r_{k+1} = (r_k - q_k) b`` with ``r_0 = wn``; so
    ``sum_k b^-k q_k`` approximates ``wn`` to half a level times ``b^-(S-1)``.

    Example:
        >>> from aimc.chips import load
        >>> chip = load("isaac")  # 8 slices of 4-level cells, base 4
        >>> parts = slice_parts(torch.tensor([0.7]), chip)
        >>> err = float(sum(q * s for q, s in zip(parts, significance(chip)))) - 0.7
        >>> abs(err) <= 4.0 ** -7 / 6  # half a level (1/6) of the last slice
        True
    """
    S, base = chip.mapping.slices, chip.mapping.slice_base
    if base == 1.0:
        return wn.unsqueeze(0).expand(S, *wn.shape)
    levels = getattr(chip.device, "n_levels", None)
    parts, r = [], wn
    for _ in range(S):
        q = r if levels is None else torch.sign(r) * quantise_to_levels(r.abs(), 0.0, 1.0, levels)
        parts.append(q)
        r = (r - q) * base
    return torch.stack(parts)


def programmed_levels(wn: torch.Tensor, chip) -> torch.Tensor:
    """Normalised weights ``wn`` in [-1, 1] -> the values a device with ``n_levels``
    programmable levels stores (``G = g_min + |w| dg`` rounded to one of ``n_levels``
    equally spaced levels in [g_min, g_max], :func:`~aimc.physics.devices.quantise_to_levels`;
    the other device of the pair sits at ``g_min``, a level); ``wn`` itself for a device
    without levels.

    Example:
        >>> from aimc.chips import load
        >>> programmed_levels(torch.tensor([0.3, -0.9]), load("isaac")).tolist()  # 4 levels
        [0.3333333432674408, -1.0]
    """
    levels = getattr(chip.device, "n_levels", None)
    if levels is None:
        return wn
    return torch.sign(wn) * quantise_to_levels(wn.abs(), 0.0, 1.0, levels)
