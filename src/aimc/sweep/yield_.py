"""Manufacturing yield: fault maps per die -> accuracy per die -> functional yield -> cost per good die.

For ``n_dies`` dies of a chip, each with its own clustered defect density
(:mod:`aimc.physics.defects`, Stapper's negative binomial), the defects that kill the die
outright are drawn on the whole die area, and the row, bit-line and stuck-device faults
on the tiles that hold the model's layers (:func:`aimc.tiles.faults.draw_faults`, all dies
at once); fault-aware mapping moves the worst columns onto spare columns or prunes them
or spare rows, or prunes them (:func:`aimc.tiles.faults.repair`). Each living die is programmed with its faults
(:func:`aimc.program`, seed ``seed + die``) and evaluated. A die is *good* when it lives
and its accuracy reaches the threshold; the **functional yield** is the share of good dies
and the **cost per good die** is ``wafer_cost / (dies_per_wafer * yield)``.

Die area: the cost model's (``aimc.cost.estimate(...).area_mm2``: ``n_tiles`` tiles plus
``chip_extra_area_mm2``); spares grow every tile by ``(cols + spare_cols) / cols *
(rows + spare_rows) / rows`` (an upper bound: the peripherals along the other edge do not grow). Dies per wafer (gross):
``pi d^2 / (4 A) - pi d / sqrt(2 A)`` on a ``d = 300`` mm wafer (the standard formula
compared in D. K. de Vries, IEEE Trans. Semicond. Manuf. 18, 136 (2005)). Wafer prices:
:data:`WAFER_COST_USD`.

Example:
    >>> round(dies_per_wafer(100.0))  # 706.9 - 66.6
    640
    >>> wafer_cost_usd(14.0)  # a 14 nm die is priced as the 16/12 nm class
    3984.0
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

import aimc
from aimc.chips import ChipSpec
from aimc.chips.cost_params import CostConfig
from aimc.nn.convert import analog_layers
from aimc.physics.defects import DefectModel, die_density_factor, survives
from aimc.tiles import encode
from aimc.tiles.faults import draw_faults, repair

__all__ = ["WAFER_COST_USD", "wafer_cost_usd", "dies_per_wafer", "die_area_mm2", "DieResults", "die_accuracies",
           "functional_yield", "cost_per_good_die"]

#: Foundry sale price of one 300 mm wafer in 2020 (US$) by node (nm): S. M. Khan and A. Mann,
#: "AI Chips: What They Are and Why They Matter", CSET (2020), Table "foundry sale price per
#: wafer" (90 nm: $1,650; 16/12 nm: $3,984; 10 nm: $5,992; 7 nm: $9,346; 5 nm: $16,988).
WAFER_COST_USD: dict[float, float] = {90.0: 1650.0, 16.0: 3984.0, 12.0: 3984.0, 10.0: 5992.0, 7.0: 9346.0,
                                      5.0: 16988.0}

_CHUNK = 64  # dies per fault-map draw


def wafer_cost_usd(node_nm: float) -> float:
    """Wafer price for a node: the table's entry, 12-16 nm priced as the 16/12 nm class.

    Raises:
        ValueError: a node the table does not cover (pass the price explicitly).
    """
    if 12.0 <= node_nm <= 16.0:
        return WAFER_COST_USD[16.0]
    if node_nm in WAFER_COST_USD:
        return WAFER_COST_USD[node_nm]
    raise ValueError(f"no cited wafer price for a {node_nm:g} nm node (known: "
                     f"{', '.join(f'{k:g}' for k in sorted(WAFER_COST_USD))} nm, 12-16 nm); give wafer_cost_usd")


def dies_per_wafer(area_mm2: float, wafer_diameter_mm: float = 300.0) -> float:
    """Gross dies per wafer, ``pi d^2/(4A) - pi d/sqrt(2A)`` (module doc)."""
    if not area_mm2 > 0 or not wafer_diameter_mm > 0:
        raise ValueError(f"area_mm2 and wafer_diameter_mm must be > 0, got {area_mm2} and {wafer_diameter_mm}")
    d = wafer_diameter_mm
    return max(0.0, math.pi * d * d / (4 * area_mm2) - math.pi * d / math.sqrt(2 * area_mm2))


def die_area_mm2(chip: ChipSpec, spare_cols: int = 0, spare_rows: int = 0) -> tuple[float, float]:
    """``(tile_area, die_area)`` in mm² from the cost model, tiles grown by their spares."""
    from aimc.cost import estimate, mvm_workload

    area = estimate(mvm_workload(chip.rows, chip.cols, 1), chip).area_mm2
    extra = (chip.cost or CostConfig()).chip_extra_area_mm2
    tile = (area - extra) / chip.n_tiles
    grow = (chip.cols + spare_cols) / chip.cols * (chip.rows + spare_rows) / chip.rows
    return tile, chip.n_tiles * tile * grow + extra


@dataclass
class DieResults:
    """Per die: ``alive`` (no fatal defect), ``accuracy`` (NaN for dead dies), the density
    factor ``g`` of its defect density, and the die's geometry and price."""

    alive: np.ndarray
    accuracy: np.ndarray
    g: np.ndarray
    die_area_mm2: float
    dies_per_wafer: float
    wafer_cost_usd: float
    config: dict = field(default_factory=dict)


def die_accuracies(model: nn.Module, evaluate: Callable[[nn.Module], float], defects: DefectModel, n_dies: int,
                   spare_cols: int = 0, prune: bool = False, seed: int = 0, wafer_cost: float | None = None,
                   progress: Callable[[int, int], None] | None = None, spare_rows: int = 0) -> DieResults:
    """Program ``n_dies`` defective dies of a converted model and evaluate each living one.

    Args:
        model: a model converted with :func:`aimc.convert` (all analog layers on one chip).
        evaluate: ``f(model) -> accuracy`` of the programmed model (e.g. test accuracy).
        defects: the defect model; ``spare_cols``/``spare_rows``/``prune``: fault-aware mapping.
        n_dies: dies to draw; ``seed``: all draws (defects, then programming noise per die).
        wafer_cost: US$ per wafer; None: :func:`wafer_cost_usd` of the chip's node.
        progress: called ``(done, total)`` after each evaluated die.

    The fault maps of all dies are drawn and repaired at once (chunks of 64 dies); the
    dies are then programmed and evaluated one after another, and ``model`` is left
    programmed as the last living die.
    """
    layers = list(analog_layers(model))
    if not layers:
        raise ValueError("die_accuracies: the model has no analog layers; call aimc.convert(model, chip) first")
    chip = layers[0][1].chip
    if any(layer.chip != chip for _, layer in layers):
        raise ValueError("die_accuracies: all analog layers must sit on one chip spec")
    if n_dies < 1:
        raise ValueError(f"n_dies must be >= 1, got {n_dies}")
    tile, area = die_area_mm2(chip, spare_cols, spare_rows)
    node = (chip.cost or CostConfig()).tech_node_nm
    price = wafer_cost_usd(node) if wafer_cost is None else float(wafer_cost)
    gen = torch.Generator().manual_seed(int(seed))
    g = die_density_factor(n_dies, defects.alpha, gen)
    dens = defects.d0_per_cm2 / 100.0 * g  # per mm²
    extra = (chip.cost or CostConfig()).chip_extra_area_mm2
    fatal_area = area * defects.fatal_share + extra * (1.0 - defects.fatal_share)
    alive = survives(dens, fatal_area, gen)
    codes = {}
    for name, layer in layers:  # all dies at once, in chunks that bound the memory of the raw maps
        enc = encode(layer.analog_weight().detach(), chip)
        codes[name] = torch.cat([repair(draw_faults(enc.layout, defects, dens[i: i + _CHUNK], tile, spare_cols, gen,
                                                    spare_rows),
                                        enc.g_target_uS, enc.used, enc.layout, chip, spare_cols, prune, spare_rows)
                                 for i in range(0, n_dies, _CHUNK)])
    acc = np.full(n_dies, np.nan)
    todo = [d for d in range(n_dies) if bool(alive[d])]
    for k, d in enumerate(todo):
        aimc.program(model, seed=int(seed) * 1_000_003 + d, faults={n: c[d] for n, c in codes.items()})
        acc[d] = float(evaluate(model))
        if progress is not None:
            progress(k + 1, len(todo))
    cfg = dict(defects.to_dict(), spare_cols=int(spare_cols), spare_rows=int(spare_rows), prune=bool(prune),
               seed=int(seed), chip=chip.name)
    return DieResults(alive.numpy(), acc, g.numpy(), area, dies_per_wafer(area), price, cfg)


def functional_yield(res: DieResults, thresholds: Sequence[float]) -> np.ndarray:
    """Share of dies alive with accuracy >= each threshold (one value per threshold)."""
    good = res.alive[None, :] & (np.nan_to_num(res.accuracy, nan=-1.0)[None, :] >= np.asarray(thresholds)[:, None])
    return good.mean(axis=1)


def cost_per_good_die(res: DieResults, yield_: float) -> float:
    """``wafer_cost / (dies_per_wafer * yield)`` in US$ (inf at zero yield)."""
    good = res.dies_per_wafer * yield_
    return math.inf if good <= 0 else res.wafer_cost_usd / good

