"""``compile_model``: a model's workload + a chip + a policy -> a :class:`~aimc.compile.plan.Plan`.

The steps: assign every matrix layer to the tiles or the digital units
(:mod:`aimc.compile.assign`), partition the analog layers into blocks
(:mod:`~aimc.compile.partition`), place the blocks on tiles (:mod:`~aimc.compile.place`),
price the result (:mod:`~aimc.compile.pricing`) and schedule it: one pipeline stage per
layer (weight-stationary: each layer owns its tiles, successive inferences overlap), the
stage latencies from the cost model, the slowest stage (bottleneck) setting the rate.

Example:
    >>> from aimc.chips import load
    >>> from aimc.graph.workload import LayerWork
    >>> work = [LayerWork("a", "linear", 300, 64, 1), LayerWork("b", "linear", 64, 10, 1)]
    >>> plan = compile_model(work, load("pcm-hermes"), "all-analog", spec="example")
    >>> [l.assign for l in plan.layers], plan.placement.tiles_per_round
    (['analog', 'analog'], [2])
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from aimc.chips import ChipSpec, load
from aimc.compile.assign import Assignment, assign
from aimc.compile.partition import Blocks, partition
from aimc.compile.place import OVERFLOW, SHARING, Placement, place, utilisation
from aimc.compile.plan import (POLICIES, AccuracyPlan, CompileOptions, Expected, LayerPlan, ModelRef, PlacementPlan, Plan,
                               SchedulePlan, Stage)
from aimc.compile.pricing import PlanCost, price, price_work
from aimc.compile.simulate import Calibration
from aimc.graph.builders import is_stationary
from aimc.graph.workload import LayerWork

__all__ = ["Calibration", "DEFAULT_CONFIDENCE", "DEFAULT_SEEDS", "compile_model", "fingerprint", "layout", "plan_cost",
           "work_of"]

#: Chips the ``sensitivity`` policy measures on: the chip-to-chip spread of a plan's
#: accuracy (about 0.8 points per chip for the digits CNN on pcm-hermes) is estimated
#: from them, and with 3 chips its standard error has 2 degrees of freedom.
DEFAULT_SEEDS = 10
#: One-sided confidence of the bound the accuracy budget is enforced on.
DEFAULT_CONFIDENCE = 0.95


def fingerprint(work: Sequence[LayerWork]) -> str:
    """SHA-256 of the graph's structure: every matrix layer's name, kind, shape, groups,
    MVMs per inference and whether it is stationary (not its weights or input statistics:
    the same architecture retrained keeps its plan)."""
    rows = [[w.name, w.kind, w.in_features, w.out_features, w.groups, w.n_mvm, is_stationary(w)] for w in work]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def layout(work: Sequence[LayerWork], chip: ChipSpec, digital: set[str],
           on_overflow: str = "fail") -> tuple[Blocks, Placement]:
    """Blocks of the analog layers and their placement."""
    blocks = partition(work, chip, [w.name not in digital for w in work])
    return blocks, place(blocks, chip, on_overflow)  # type: ignore[arg-type]


def plan_cost(work: Sequence[LayerWork], chip: ChipSpec, digital: set[str], on_overflow: str = "fail",
              host_ops: Mapping[str, int] | None = None) -> PlanCost:
    """Partition, place and price one assignment."""
    blocks, placement = layout(work, chip, digital, on_overflow)
    return price(work, chip, digital, blocks, placement, host_ops)


def work_of(plan: Plan) -> list[LayerWork]:
    """The workload a plan holds (its layers' :class:`LayerWork` fields)."""
    from aimc.graph.builders import LayerWorkIO

    keep = ("name", "kind", "in_features", "out_features", "n_mvm", "x_mean_sq", "x_mean_abs", "groups",
            "w_mean_abs", "x_elements", "stationary")
    return [LayerWorkIO(**{k: getattr(lp, k) for k in keep}) for lp in plan.layers]


def _schedule(cost: PlanCost, placement: Placement, blocks: Blocks, work: Sequence[LayerWork],
              digital: set[str]) -> SchedulePlan:
    rounds = [i for i, r in enumerate(cost.rounds) for _ in r.layers]
    on_host = digital | {"host ops"}  # the cost model's pseudo-layer of the graph's host ops
    stages = [Stage(round=r, layer=lc.name, substrate="digital" if lc.name in on_host else "analog",
                    latency_ns=lc.latency_ns) for r, lc in zip(rounds, cost.layers)]
    worst = max(stages, key=lambda s: s.latency_ns)
    return SchedulePlan(stages=stages, bottleneck=worst.layer, bottleneck_ns=worst.latency_ns)


def _tiles_of_layer(blocks: Blocks, placement: Placement, n_layers: int) -> np.ndarray:
    out = np.zeros(n_layers, dtype=np.int64)
    if len(blocks):
        key = np.unique(np.stack([blocks.layer, placement.round, placement.tile]), axis=1)
        np.add.at(out, key[0], 1)
    return out


def _aimc_version() -> str:
    """The installed aimc's version (the core may not import the root package)."""
    import sys

    root = sys.modules.get("aimc")
    return str(getattr(root, "__version__", "unknown"))


def build_plan(work: Sequence[LayerWork], chip: ChipSpec, a: Assignment, options: CompileOptions, *,
               spec: str, n_params: int = 0, dataset: str | None = None,
               accuracy: AccuracyPlan | None = None, host_ops: Mapping[str, int] | None = None) -> Plan:
    """Lay out, price and schedule an assignment ``a`` into a :class:`Plan`."""
    digital = {w.name for w in work if a.where[w.name] == "digital"}
    blocks, placement = layout(work, chip, digital, options.on_overflow)
    cost = price(work, chip, digital, blocks, placement, host_ops)
    tiles = _tiles_of_layer(blocks, placement, len(work))
    by_name: dict[str, list[float]] = {}
    for lc in cost.layers:
        e_l = by_name.setdefault(lc.name.split("#r")[0], [0.0, 0.0])
        e_l[0] += lc.total_pJ
        e_l[1] += lc.latency_ns
    layers = [LayerPlan(name=w.name, kind=w.kind, in_features=w.in_features, out_features=w.out_features,
                        n_mvm=w.n_mvm, groups=w.groups, x_mean_sq=w.x_mean_sq, x_mean_abs=w.x_mean_abs,
                        w_mean_abs=w.w_mean_abs, x_elements=getattr(w, "x_elements", None),
                        stationary=is_stationary(w), assign=a.where[w.name], reason=a.reason[w.name],
                        sensitivity=a.sensitivity.get(w.name), energy_pJ=by_name[w.name][0],
                        latency_ns=by_name[w.name][1], tiles=int(tiles[i])) for i, w in enumerate(work)]
    reps = cost.rounds[0].tiles_used and max(1, chip.n_tiles // max(1, cost.rounds[0].tiles_used))
    pp = PlacementPlan(sharing=SHARING, tiles_per_round=list(placement.tiles_per_round) or [0],
                       replicas=int(reps or 1) if placement.n_rounds <= 1 else 1,
                       **{f: getattr(blocks, f).tolist() for f in ("layer", "group", "i_in", "j_out", "rows", "cols")},
                       round=placement.round.tolist(), tile=placement.tile.tolist(), row=placement.row.tolist(),
                       col=placement.col.tolist())
    u_used, u_chip = utilisation(blocks, placement, chip)
    all_dig = price_work(work, chip, {w.name for w in work}, host_ops=host_ops).energy_pJ
    expected = Expected(energy_pJ=cost.energy_pJ, latency_ns=cost.latency_ns,
                        throughput_inf_per_s=cost.throughput_inf_per_s, area_mm2=cost.area_mm2,
                        tiles_used=int(sum(placement.tiles_per_round)), rounds=max(1, placement.n_rounds),
                        utilisation_used=min(1.0, u_used), utilisation_chip=min(1.0, u_chip),
                        reprogram_energy_pJ=cost.reprogram_energy_pJ, reprogram_time_ns=cost.reprogram_time_ns,
                        breakdown=cost.breakdown, all_digital_energy_pJ=all_dig)
    return Plan(aimc_version=_aimc_version(),
                model=ModelRef(spec=spec, fingerprint=fingerprint(work), n_params=int(n_params), dataset=dataset),
                chip=chip.to_dict(), options=options, layers=layers, host_ops=dict(host_ops or {}), placement=pp,
                schedule=_schedule(cost, placement, blocks, work, digital), expected=expected, accuracy=accuracy)


def compile_model(work: Sequence[LayerWork], chip: ChipSpec | str, policy: str = "all-analog", *,
                  spec: str = "model", budget: float | None = None, latency_us: float | None = None,
                  on_overflow: str = "fail", calibration: Calibration | None = None, t_s: float = 86400.0,
                  seeds: int = DEFAULT_SEEDS, confidence: float = DEFAULT_CONFIDENCE, n_params: int = 0,
                  dataset: str | None = None,
                  progress: Callable[[str], None] | None = None, host_ops: Mapping[str, int] | None = None) -> Plan:
    """Compile a model's workload onto ``chip`` with an assignment ``policy``.

    Args:
        work: the model's matrix layers, named by module path.
        chip: preset name, YAML path or :class:`ChipSpec`.
        policy: ``all-analog``, ``all-digital``, ``sensitivity`` (needs ``calibration``
            and ``budget``) or ``energy`` (needs ``latency_us``); :mod:`aimc.compile.assign`.
        spec: the model's name, recorded in the plan (``aimc run`` rebuilds it from it).
        budget: accuracy points (a fraction, 0.01 = 1 point) the plan may lose against
            floating point, on the calibration data: the upper confidence bound of the
            drop (:func:`aimc.compile.simulate.drop_bound`) must be within it.
        latency_us: latency bound of the ``energy`` policy, in µs per inference.
        on_overflow: ``fail`` or ``multiplex`` (:func:`aimc.compile.place.place`).
        calibration: the digital model and data for sensitivity (and the plan's accuracy).
        t_s: time since programming at which accuracy is measured (drift), seconds.
        seeds: chips (programming seeds 0 .. seeds-1) per accuracy measurement (``sensitivity``:
            each layer alone, and each assignment verified; >= 2 for a confidence bound).
        confidence: one-sided confidence of the bound the ``sensitivity`` budget is enforced
            on, in [0.5, 1); 0.5 is the point estimate (the mean over chips and images).
        n_params, dataset: recorded in the plan.
        host_ops: the model's non-MVM work on the host, ``{op kind: elements}``
            (:meth:`aimc.graph.Graph.host_ops`), priced with the plan and kept in it.
        progress: called with a short description of each step.

    Raises:
        ValueError: an unknown policy or a missing setting (naming it); PlacementError:
            the model does not fit and ``on_overflow="fail"``.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; allowed: {', '.join(POLICIES)}")
    if on_overflow not in OVERFLOW:
        raise ValueError(f"on_overflow must be one of {', '.join(OVERFLOW)}, got {on_overflow!r}")
    work = list(work)
    if not work:
        raise ValueError(f"{spec}: the model has no matrix layer to compile (nn.Linear, nn.Conv*, recurrent layers)")
    chip = load(chip)
    options = CompileOptions.model_validate(dict(policy=policy, budget=budget, latency_us=latency_us,
                                                 on_overflow=on_overflow, t_s=t_s, seeds=seeds,
                                                 confidence=confidence))

    def cost_of(digital: set[str]) -> PlanCost:
        return plan_cost(work, chip, digital, on_overflow, host_ops)

    a, acc = assign(policy, work, chip, cost_of, options, calibration, progress)
    return build_plan(work, chip, a, options, spec=spec, n_params=n_params, dataset=dataset, accuracy=acc,
                      host_ops=host_ops)


def options_dict(plan: Plan) -> dict[str, Any]:
    """The compile options of a plan as keyword arguments of :func:`compile_model`."""
    return plan.options.model_dump()
