"""Hybrid analog/digital assignment: which matrix layers run on the tiles, which in the
chip's digital units.

A matrix that is not stationary (an activation x activation product such as attention's
``Q K^T``) always runs digitally: it cannot be programmed once and read forever. For the
rest, the policies:

* ``all-analog``: every layer on the tiles.
* ``all-digital``: every layer in the digital units (the baseline: exact, and what the
  energy of analog is compared against).
* ``sensitivity``: measure each layer's accuracy drop when it alone runs analog (converted
  with :func:`aimc.convert`'s filter, programmed, drifted to ``t_s``, compensated; mean over
  ``seeds`` chips, on calibration data), then move layers to digital greedily, the
  largest drop per unit of energy saved (digital minus analog energy of that layer) first
  (a layer whose digital units cost less than its tiles is digital from the start),
  until the estimated drop (the summed drops of the analog layers) meets the budget;
  each estimate that meets it is verified by evaluating the whole assignment on the
  ``seeds`` chips, and the greedy continues unless the **upper confidence bound** of
  the measured drop (:func:`aimc.compile.simulate.drop_bound`: chips and calibration
  images both sampled, one-sided at ``confidence``, default 95 %) is within the budget:
  a plan that meets the budget only on the mean of a few chips is refused. The first
  assignment that passes is the one with least energy along the greedy path (a
  knapsack heuristic: value = accuracy kept, weight = energy).
* ``energy``: least energy under a latency bound: each layer starts where its energy is
  least; while the plan's latency exceeds the bound, the layer whose move to the faster
  substrate costs the least extra energy per ns saved is moved (re-priced in full after
  each move).

Example:
    >>> from aimc.chips import load
    >>> from aimc.graph.workload import LayerWork
    >>> from aimc.compile.plan import CompileOptions
    >>> from aimc.compile.compiler import plan_cost
    >>> chip = load("pcm-hermes")
    >>> work = [LayerWork("a", "linear", 256, 256, 4), LayerWork("b", "linear", 256, 10, 1)]
    >>> a, _ = assign("all-digital", work, chip, lambda d: plan_cost(work, chip, d), CompileOptions(policy="all-digital"))
    >>> a.where
    {'a': 'digital', 'b': 'digital'}
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from aimc.chips import ChipSpec
from aimc.compile.plan import POLICIES, AccuracyPlan, CompileOptions
from aimc.compile.pricing import PlanCost, price_work
from aimc.compile.simulate import Calibration, DropBound, drop_bound, evaluate_correct
from aimc.graph.builders import is_stationary
from aimc.graph.workload import LayerWork

__all__ = ["Assignment", "assign"]

_NOT_STATIONARY = "not stationary (activation x activation product): digital units"


@dataclass
class Assignment:
    """Per layer name: ``where`` it runs, the ``reason``, and its measured ``sensitivity``
    (accuracy drop as a fraction when it alone runs analog)."""

    where: dict[str, str] = field(default_factory=dict)
    reason: dict[str, str] = field(default_factory=dict)
    sensitivity: dict[str, float] = field(default_factory=dict)

    @property
    def digital(self) -> set[str]:
        return {n for n, w in self.where.items() if w == "digital"}

    @property
    def analog(self) -> set[str]:
        return {n for n, w in self.where.items() if w == "analog"}


def _start(work: Sequence[LayerWork], where: str, reason: str) -> Assignment:
    a = Assignment()
    for w in work:
        fixed = not is_stationary(w)
        a.where[w.name] = "digital" if fixed else where
        a.reason[w.name] = _NOT_STATIONARY if fixed else reason
    return a


def assign(policy: str, work: Sequence[LayerWork], chip: ChipSpec, cost_of: Callable[[set[str]], PlanCost],
           options: CompileOptions, calibration: Calibration | None = None,
           progress: Callable[[str], None] | None = None) -> tuple[Assignment, AccuracyPlan | None]:
    """Assign every layer of ``work`` (module doc); returns the assignment and, for
    ``sensitivity``, the accuracy measured on the calibration data.

    Args:
        cost_of: prices an assignment given its digital layer names (partition, place, price).
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; allowed: {', '.join(POLICIES)}")
    if policy == "all-analog":
        return _start(work, "analog", "policy all-analog"), None
    if policy == "all-digital":
        return _start(work, "digital", "policy all-digital (baseline)"), None
    if policy == "energy":
        if options.latency_us is None:
            raise ValueError("policy 'energy' needs a latency bound: --latency-us (µs per inference)")
        return _least_energy(work, chip, cost_of, options.latency_us * 1e3), None
    if options.budget is None:
        raise ValueError("policy 'sensitivity' needs an accuracy budget: --budget (e.g. 1%)")
    if calibration is None:
        raise ValueError("policy 'sensitivity' needs a model with weights and calibration data; "
                         "a shape-only workload (mvm:, transformer:) has none")
    return _sensitivity(work, chip, options, calibration, progress or (lambda s: None))


def _layer_costs(work: Sequence[LayerWork], chip: ChipSpec) -> tuple[np.ndarray, ...]:
    """Per layer: (analog energy, digital energy, analog latency, digital latency)."""
    an = price_work(work, chip, set(), replicate=False)
    dg = price_work(work, chip, {w.name for w in work})
    return (np.array([lc.total_pJ for lc in an.layers]), np.array([lc.total_pJ for lc in dg.layers]),
            np.array([lc.latency_ns for lc in an.layers]), np.array([lc.latency_ns for lc in dg.layers]))


def _least_energy(work: Sequence[LayerWork], chip: ChipSpec, cost_of: Callable[[set[str]], PlanCost],
                  bound_ns: float) -> Assignment:
    e_a, e_d, l_a, l_d = _layer_costs(work, chip)
    fixed = np.array([not is_stationary(w) for w in work])
    digital = fixed | (e_d < e_a)
    names = [w.name for w in work]
    moved: list[str] = []
    while True:
        cost = cost_of({n for n, d in zip(names, digital) if d})
        if cost.latency_ns <= bound_ns:
            break
        # move to the faster substrate: extra energy per ns saved (per-layer estimates)
        d_lat = np.where(digital, l_a - l_d, l_d - l_a)  # latency change of flipping
        d_e = np.where(digital, e_a - e_d, e_d - e_a)
        ok = (d_lat < 0) & ~fixed & ~np.isin(names, moved)
        if not ok.any():
            raise ValueError(f"--latency-us {bound_ns / 1e3:g}: no assignment found below it; the least latency "
                             f"reached is {cost.latency_ns / 1e3:.4g} µs")
        score = np.where(ok, np.maximum(d_e, 0.0) / np.maximum(-d_lat, 1e-30), np.inf)
        k = int(np.argmin(score))
        digital[k] = ~digital[k]
        moved.append(names[k])
    a = Assignment()
    for i, w in enumerate(work):
        a.where[w.name] = "digital" if digital[i] else "analog"
        a.reason[w.name] = (_NOT_STATIONARY if fixed[i] else
                            ("moved to meet the latency bound" if w.name in moved else "least energy") +
                            f" (analog {e_a[i]:.4g} pJ / {l_a[i]:.4g} ns, digital {e_d[i]:.4g} pJ / {l_d[i]:.4g} ns)")
    return a


def _sensitivity(work: Sequence[LayerWork], chip: ChipSpec, options: CompileOptions, cal: Calibration,
                 progress: Callable[[str], None]) -> tuple[Assignment, AccuracyPlan]:
    seeds, t = list(range(options.seeds)), [options.t_s]
    budget = float(options.budget or 0.0)

    def outcomes(analog: set[str]) -> torch.Tensor:
        """``(chips, images)``: right or wrong on each calibration image on each chip."""
        return evaluate_correct(cal.model, chip, analog, cal.x, cal.y, seeds, t)[0]

    fp_ok = outcomes(set())[0]
    fp = float(fp_ok.double().mean())

    def bound(ok: torch.Tensor) -> DropBound:
        return drop_bound(fp_ok, ok, options.confidence)

    a = _start(work, "analog", "")
    stationary = [w.name for w in work if a.where[w.name] == "analog"]
    e_a, e_d, _, _ = _layer_costs(work, chip)
    saving = {w.name: float(e_d[i] - e_a[i]) for i, w in enumerate(work)}
    for name in stationary:
        if saving[name] <= 0:  # cheaper and exact in the digital units: no reason to go analog
            a.where[name] = "digital"
            a.reason[name] = f"digital units cheaper than its tiles (by {-saving[name]:.4g} pJ)"
    cand = [n for n in stationary if a.where[n] == "analog"]
    for k, name in enumerate(cand):
        progress(f"sensitivity {k + 1}/{len(cand)}: {name}")
        a.sensitivity[name] = bound(outcomes({name})).mean
    # the largest drop per unit of energy saved goes digital first
    order = sorted(cand, key=lambda n: -max(a.sensitivity[n], 0.0) / saving[n])
    progress("all-analog accuracy")
    all_analog = outcomes(set(stationary))
    analog = set(cand)
    ok = all_analog if analog == set(stationary) else outcomes(analog)
    k = 0
    digital_order: list[str] = []

    def estimate(on: set[str]) -> float:
        return sum(max(a.sensitivity[n], 0.0) for n in on)

    while bound(ok).upper > budget and analog:
        while k < len(order):  # move layers until the estimated drop meets the budget
            analog.discard(order[k])
            digital_order.append(order[k])
            k += 1
            if estimate(analog) <= budget:
                break
        if not analog:
            ok = fp_ok.expand(len(seeds), -1)
            break
        progress(f"verifying {len(analog)} analog layers")
        ok = outcomes(analog)
    b = bound(ok) if analog else DropBound(mean=0.0, se=0.0, df=float("inf"), upper=0.0,
                                           confidence=options.confidence)  # all digital: exact
    for name in cand:
        s = a.sensitivity[name]
        if name in analog:
            a.reason[name] = (f"analog: drop {100 * s:.2f} points alone; the plan's drop is at most "
                              f"{100 * b.upper:.2f} points at {100 * b.confidence:g} % confidence, budget met")
        else:
            a.where[name] = "digital"
            a.reason[name] = (f"kept digital ({digital_order.index(name) + 1}. most sensitive per energy saved: "
                              f"drop {100 * s:.2f} points alone, analog would save {saving[name]:.4g} pJ)")
    per_chip = ok.double().mean(1)
    plan_acc = AccuracyPlan(data=cal.data, n=len(cal.y), fp=fp, mean=float(per_chip.mean()),
                            std=float(per_chip.std(unbiased=False)), t_s=options.t_s, seeds=len(seeds),
                            all_analog=float(all_analog.double().mean()), drop_se=b.se, drop_upper=b.upper)
    return a, plan_acc
