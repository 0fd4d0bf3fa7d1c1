"""Loading a plan: its consistency, checked field by field.

:func:`load_plan` reads a plan (:func:`aimc.compile.plan.read_plan`: JSON, types, ranges)
and :func:`check_plan` verifies what a hand edit can break:

* ``chip`` is a valid chip spec;
* layer names are unique; a matrix that is not stationary is not assigned analog;
* the blocks are exactly the partition of the analog layers (same layers, groups,
  block indices and sizes: :func:`aimc.compile.partition.partition`);
* every block lies inside its tile (``row + rows <= chip.rows``, ``col + cols <=
  chip.cols``), on a tile that exists (``tile < n_tiles`` and ``< tiles_per_round``), in
  a round that exists; blocks sharing a tile use disjoint rows and disjoint columns (the
  sharing rule of :mod:`aimc.compile.place`, which implies no overlap);
* ``tiles_per_round`` counts the tiles the blocks use, and ``expected`` holds the numbers
  the cost model recomputes from the plan (relative tolerance 1e-6).

Each error is a :class:`~aimc.compile.plan.PlanError` naming the file and the field.

Example:
    >>> from aimc.chips import load
    >>> from aimc.graph.workload import LayerWork
    >>> from aimc.compile.compiler import compile_model
    >>> plan = compile_model([LayerWork("a", "linear", 300, 64, 1)], load("pcm-hermes"), spec="x")
    >>> bad = plan.model_copy(update={"placement": plan.placement.model_copy(update={"row": [0, 250]})})
    >>> check_plan(bad)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    aimc.compile.plan.PlanError: inconsistent plan: field 'placement.row[1]': block ... of layer 'a' ...
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from aimc.chips import ChipSpec
from aimc.compile.partition import partition
from aimc.compile.place import Placement
from aimc.compile.plan import Plan, PlanError, read_plan
from aimc.compile.pricing import PlanCost, price
from aimc.config import ConfigError
from aimc.graph.workload import LayerWork

__all__ = ["check_model", "check_plan", "load_plan", "price_plan"]

_BLOCK = ("layer", "group", "i_in", "j_out", "rows", "cols")
_WHERE = ("round", "tile", "row", "col")


def load_plan(path: str | Path) -> tuple[Plan, ChipSpec]:
    """Read a plan file and check it (module doc); returns the plan and its chip."""
    plan = read_plan(path)
    return plan, check_plan(plan, source=f"plan {path}")


def check_plan(plan: Plan, source: str = "plan") -> ChipSpec:
    """Check a plan's consistency (module doc); returns its chip.

    Raises:
        PlanError: the first inconsistency, naming ``source`` and the field.
    """
    def bad(field: str, msg: str) -> PlanError:
        return PlanError(f"inconsistent {source}: field '{field}': {msg}")

    try:
        chip = ChipSpec.from_dict(plan.chip, source=f"{source} field 'chip'")
    except ConfigError as e:
        raise PlanError(str(e)) from None
    names = [lp.name for lp in plan.layers]
    for i, lp in enumerate(plan.layers):
        if names.index(lp.name) != i:
            raise bad(f"layers[{i}].name", f"{lp.name!r} repeats layers[{names.index(lp.name)}]")
        if lp.assign == "analog" and not lp.stationary:
            raise bad(f"layers[{i}].assign", f"layer {lp.name!r} is not stationary (activation x activation), "
                                             "it cannot run analog")
    pp = plan.placement
    n = len(pp.layer)
    for f in (*_BLOCK, *_WHERE):
        if len(getattr(pp, f)) != n:
            raise bad(f"placement.{f}", f"{len(getattr(pp, f))} entries, placement.layer has {n}")
    from aimc.compile.compiler import work_of

    work = work_of(plan)
    blocks = partition(work, chip, [lp.assign == "analog" for lp in plan.layers])
    got = {f: np.asarray(getattr(pp, f), dtype=np.int64) for f in (*_BLOCK, *_WHERE)}
    if len(blocks) != n:
        raise bad("placement.layer", f"{n} blocks, the analog layers partition into {len(blocks)} on "
                                     f"{chip.rows}x{chip.cols} tiles")
    for f in _BLOCK:
        diff = np.flatnonzero(getattr(blocks, f) != got[f])
        if diff.size:
            k = int(diff[0])
            raise bad(f"placement.{f}[{k}]", f"is {got[f][k]}, the partition of layer "
                                             f"{names[int(blocks.layer[k])]!r} gives {int(getattr(blocks, f)[k])}")
    _check_where(plan, chip, got, names, bad)
    cost = price_plan(plan, chip)
    for f in ("energy_pJ", "latency_ns", "reprogram_energy_pJ"):
        want, have = float(getattr(cost, f)), float(getattr(plan.expected, f))
        if not math.isclose(want, have, rel_tol=1e-6, abs_tol=1e-9):
            raise bad(f"expected.{f}", f"is {have:.6g}, the cost model gives {want:.6g} for this plan")
    return chip


def _check_where(plan: Plan, chip: ChipSpec, got: dict[str, np.ndarray], names: list[str], bad) -> None:
    pp = plan.placement
    tpr = np.asarray(pp.tiles_per_round, dtype=np.int64)
    if (tpr > chip.n_tiles).any():
        r = int(np.flatnonzero(tpr > chip.n_tiles)[0])
        raise bad(f"placement.tiles_per_round[{r}]", f"{int(tpr[r])} tiles, the chip has {chip.n_tiles}")
    rnd, tile, row, col, rows, cols = (got[f] for f in ("round", "tile", "row", "col", "rows", "cols"))

    def first(mask: np.ndarray, field: str, msg) -> None:
        if mask.any():
            k = int(np.flatnonzero(mask)[0])
            raise bad(f"placement.{field}[{k}]", f"block {k} of layer {names[int(got['layer'][k])]!r} " + msg(k))

    first((rnd < 0) | (rnd >= tpr.size), "round", lambda k: f"is in round {rnd[k]}, the plan has {tpr.size}")
    first((tile < 0) | (tile >= chip.n_tiles), "tile", lambda k: f"is on tile {tile[k]}, the chip has "
                                                                 f"{chip.n_tiles} (n_tiles)")
    first(tile >= tpr[np.clip(rnd, 0, max(tpr.size - 1, 0))] if tpr.size else tile >= 0, "tile",
          lambda k: f"is on tile {tile[k]}, round {rnd[k]} uses {tpr[rnd[k]]} tiles (tiles_per_round)")
    first((row < 0) | (row + rows > chip.rows), "row",
          lambda k: f"spans rows {row[k]}..{row[k] + rows[k] - 1}, the tile has {chip.rows}")
    first((col < 0) | (col + cols > chip.cols), "col",
          lambda k: f"spans columns {col[k]}..{col[k] + cols[k] - 1}, the tile has {chip.cols}")
    for start, size, field in ((row, rows, "row"), (col, cols, "col")):
        order = np.lexsort((start, tile, rnd))  # by round, tile, then offset
        same = (rnd[order][1:] == rnd[order][:-1]) & (tile[order][1:] == tile[order][:-1])
        clash = same & (start[order][1:] < start[order][:-1] + size[order][:-1])
        if clash.any():
            i = int(np.flatnonzero(clash)[0])
            a, b = int(order[i]), int(order[i + 1])
            raise bad(f"placement.{field}[{b}]", f"block {b} of layer {names[int(got['layer'][b])]!r} shares "
                      f"{field}s with block {a} on tile {tile[b]} (round {rnd[b]}); blocks on one tile must use "
                      "disjoint rows and columns")
    used = np.unique(np.stack([rnd, tile]), axis=1) if rnd.size else np.zeros((2, 0), np.int64)
    counts = np.bincount(used[0], minlength=tpr.size) if rnd.size else np.zeros(tpr.size, np.int64)
    diff = np.flatnonzero(counts != tpr[:counts.size]) if tpr.size else np.array([], np.int64)
    if diff.size and not (rnd.size == 0 and tpr.tolist() == [0]):
        r = int(diff[0])
        raise bad(f"placement.tiles_per_round[{r}]", f"is {int(tpr[r])}, the blocks of round {r} use {int(counts[r])}")


def price_plan(plan: Plan, chip: ChipSpec) -> PlanCost:
    """Energy and latency of a plan as it stands (its assignment and placement), from the
    cost model: what ``aimc estimate plan.json`` prints and the compiler wrote."""
    from aimc.compile.compiler import work_of

    work = work_of(plan)
    pp = plan.placement
    blocks = partition(work, chip, [lp.assign == "analog" for lp in plan.layers])
    rnd, tile, row, col = (np.asarray(getattr(pp, f), dtype=np.int64) for f in _WHERE)
    placement = Placement(rnd, tile, row, col, list(pp.tiles_per_round) if len(pp.layer) else [])
    return price(work, chip, {lp.name for lp in plan.layers if lp.assign == "digital"}, blocks, placement,
                 plan.host_ops or None)


def check_model(plan: Plan, work: Sequence[LayerWork], source: str = "plan") -> None:
    """Check that ``work`` (the model as built now) is the graph the plan was compiled for.

    Raises:
        PlanError: the fingerprints differ; the message names the first layer that differs.
    """
    from aimc.compile.compiler import fingerprint, work_of

    if fingerprint(work) == plan.model.fingerprint:
        return
    have = [(w.name, w.kind, w.in_features, w.out_features, w.groups, w.n_mvm) for w in work]
    want = [(w.name, w.kind, w.in_features, w.out_features, w.groups, w.n_mvm) for w in work_of(plan)]
    diff = next((i for i, (a, b) in enumerate(zip(have, want)) if a != b), min(len(have), len(want)))
    what = (f"layer {diff}: plan has {want[diff] if diff < len(want) else 'none'}, the model has "
            f"{have[diff] if diff < len(have) else 'none'} (name, kind, in, out, groups, MVMs)")
    raise PlanError(f"{source}: field 'model.fingerprint' does not match the model {plan.model.spec!r} as built "
                    f"now; {what}. Recompile the model")
