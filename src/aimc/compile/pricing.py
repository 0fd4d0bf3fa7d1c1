"""Pricing a compiled model: the cost model (:func:`aimc.cost.estimate`) per round.

Everything the compiler reports about energy and latency comes from :func:`price`, and
``aimc estimate plan.json`` calls the same function on the plan, so the two agree.

* One round (the model fits): exactly :func:`aimc.cost.estimate` on the workload, with
  the digital layers run in the chip's digital units (:func:`price_work`) and the tile
  count of the placement (small blocks share tiles; spare tiles hold replicas).
* Several rounds (``--on-overflow multiplex``): each round is priced as a workload of its
  own (its layers, or the parts of a layer larger than the chip: a ``K' x N'`` sub-matrix
  per group), without replicas, and between rounds the next round's devices are
  programmed: ``devices * program_pulses * program_pulse_pJ`` of energy and
  ``rows * program_row_ns`` of time per round (rows of a tile one after another, all
  tiles in parallel; :func:`aimc.cost.components.programming_energy_pJ` /
  :func:`~aimc.cost.components.programming_time_ns`). With batch 1 every round is
  reprogrammed for every inference; a batch of ``B`` inferences per round divides that by
  ``B`` (not modelled). Partial sums of a layer split across rounds along its input are
  added digitally (not priced: one add per output and round, negligible next to an ADC).

Example:
    >>> from aimc.chips import load
    >>> from aimc.graph.workload import LayerWork
    >>> work = [LayerWork("a", "linear", 64, 64, 1), LayerWork("b", "linear", 64, 10, 1)]
    >>> chip = load("pcm-hermes")
    >>> price_work(work, chip, {"b"}).layers[1].tiles   # digital: no tiles
    0
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from aimc.chips import ChipSpec
from aimc.chips.cost_params import DEFAULT_SOURCES, CostConfig
from aimc.compile.partition import Blocks
from aimc.compile.place import Placement
from aimc.cost import components as C
from aimc.cost.estimator import CostReport, estimate
from aimc.cost.layer_cost import LayerCost
from aimc.graph.workload import LayerWork

__all__ = ["PlanCost", "price", "price_work", "round_workloads"]


def price_work(work: Sequence[LayerWork], chip: ChipSpec, digital: set[str], *, tiles_placed: int | None = None,
               replicate: bool = True, host_ops: Mapping[str, int] | None = None) -> CostReport:
    """Price ``work`` on ``chip`` with the layers named in ``digital`` run on the chip's
    digital units (its ``digital:`` section: MACs, weight fetches, activations between
    cores; :mod:`aimc.cost.soc`), the others on its tiles, and ``host_ops`` (non-MVM work,
    ``{op kind: elements}``) on the host. The one place where an assignment meets the
    cost model."""
    names = [w.name for w in work if w.name in digital]
    return estimate(list(work), chip, tiles_placed=tiles_placed, replicate=replicate, digital=names,
                    host_ops=host_ops)


@dataclass
class PlanCost:
    """Cost of one inference of a compiled model.

    Attributes:
        rounds: the cost report of each round (one when the model fits).
        reprogram_energy_pJ, reprogram_time_ns: per inference, between rounds (0 for one round).
    """

    rounds: list[CostReport]
    reprogram_energy_pJ: float = 0.0
    reprogram_time_ns: float = 0.0
    layers: list[LayerCost] = field(default_factory=list)

    @property
    def energy_pJ(self) -> float:
        return float(sum(r.energy_pJ for r in self.rounds) + self.reprogram_energy_pJ)

    @property
    def latency_ns(self) -> float:
        return float(sum(r.latency_ns for r in self.rounds) + self.reprogram_time_ns)

    @property
    def throughput_inf_per_s(self) -> float:
        """Pipelined rate of one round; rounds run one after another."""
        return self.rounds[0].throughput_inf_per_s if len(self.rounds) == 1 else 1e9 / self.latency_ns

    @property
    def area_mm2(self) -> float:
        return self.rounds[0].area_mm2

    @property
    def breakdown(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for r in self.rounds:
            for k, v in r.breakdown.items():
                out[k] = out.get(k, 0.0) + v
        if self.reprogram_energy_pJ:
            out["reprogramming"] = self.reprogram_energy_pJ
        return out


def _digital_round(work: Sequence[LayerWork], blocks: Blocks, placement: Placement) -> list[int]:
    """Round of each layer's first block; a digital layer joins its predecessor's round."""
    first = np.full(len(work), -1, dtype=np.int64)
    if len(blocks):
        starts = np.flatnonzero(np.diff(blocks.layer, prepend=-1))
        first[blocks.layer[starts]] = placement.round[starts]
    out, last = [], 0
    for r in first.tolist():
        last = r if r >= 0 else last
        out.append(last)
    return out


def round_workloads(work: Sequence[LayerWork], blocks: Blocks, placement: Placement,
                    slices: int = 1) -> list[list[LayerWork]]:
    """The workload each round runs (module doc); one round: ``work`` itself. ``slices``:
    the chip's slices per weight (physical columns per weight column)."""
    if placement.n_rounds <= 1:
        return [list(work)]
    home = _digital_round(work, blocks, placement)
    rounds: list[list[LayerWork]] = [[] for _ in range(placement.n_rounds)]
    for li, w in enumerate(work):
        sel = np.flatnonzero(blocks.layer == li)
        in_rounds = np.unique(placement.round[sel])
        if in_rounds.size <= 1:
            rounds[home[li] if sel.size == 0 else int(in_rounds[0])].append(w)
            continue
        per_group = w.n_mvm // w.groups
        for r in in_rounds.tolist():
            part = sel[placement.round[sel] == r]
            shapes: dict[tuple[int, int], int] = {}  # (K', N') -> groups with that sub-matrix
            for g in np.unique(blocks.group[part]).tolist():
                pg = part[blocks.group[part] == g]
                _, first_i = np.unique(blocks.i_in[pg], return_index=True)
                _, first_j = np.unique(blocks.j_out[pg], return_index=True)
                kn = (int(blocks.rows[pg][first_i].sum()), int(blocks.cols[pg][first_j].sum()) // slices)
                shapes[kn] = shapes.get(kn, 0) + 1
            for (k, n), count in shapes.items():
                rounds[r].append(LayerWork(f"{w.name}#r{r}", w.kind, k, n, per_group * count,
                                           w.x_mean_sq, w.x_mean_abs, count, w.w_mean_abs))
    return rounds


def price(work: Sequence[LayerWork], chip: ChipSpec, digital: set[str], blocks: Blocks,
          placement: Placement, host_ops: Mapping[str, int] | None = None) -> PlanCost:
    """Energy and latency of one inference of the placed model (module doc); ``host_ops``
    (the graph's non-MVM work, ``{op kind: elements}``) run on the host, priced with the
    first round."""
    parts = round_workloads(work, blocks, placement, chip.mapping.slices)
    if len(parts) == 1:
        rep = price_work(parts[0], chip, digital, tiles_placed=sum(placement.tiles_per_round), host_ops=host_ops)
        return PlanCost([rep], layers=list(rep.layers))
    reports = [price_work(p, chip, {w.name for w in p if w.name in digital}, replicate=False,
                          tiles_placed=t, host_ops=host_ops if r == 0 else None)
               for r, (p, t) in enumerate(zip(parts, placement.tiles_per_round))]
    c = chip.cost or CostConfig(sources=DEFAULT_SOURCES)
    devices = float(blocks.cells.sum()) * 2 * c.devices_per_polarity
    e = float(C.programming_energy_pJ(devices, c.program_pulses, c.program_pulse_pJ))
    t = float(C.programming_time_ns(1, chip.rows, c.program_row_ns)) * placement.n_rounds
    return PlanCost(reports, e, t, [lc for r in reports for lc in r.layers])
