"""The compiler: maps a model's workload (:mod:`aimc.graph`) onto a chip's tiles.

It splits each weight matrix into array-sized blocks (:mod:`.partition`), packs the
blocks onto the chip's finite tiles (:mod:`.place`), decides per layer whether it runs
analog or digital (:mod:`.assign`), prices and schedules the result (:mod:`.pricing`,
:mod:`.compiler`) and writes it as a versioned JSON deployment plan (:mod:`.plan`,
checked on loading by :mod:`.check`) that ``aimc run`` executes (:mod:`.simulate`) and
``aimc estimate`` prices.

Example:
    >>> from aimc.chips import load
    >>> from aimc.graph.workload import LayerWork
    >>> plan = compile_model([LayerWork("fc", "linear", 784, 128, 1)], load("pcm-hermes"), "all-analog")
    >>> plan.expected.tiles_used, plan.schedule.bottleneck
    (4, 'fc')
"""
from __future__ import annotations

from aimc.compile.check import check_plan, load_plan
from aimc.compile.compiler import Calibration, compile_model, fingerprint, plan_cost, work_of
from aimc.compile.partition import Blocks, partition
from aimc.compile.place import Placement, PlacementError, place
from aimc.compile.plan import POLICIES, Plan, PlanError, plan_schema, read_plan
from aimc.compile.pricing import PlanCost, price, price_work

__all__ = ["Blocks", "Calibration", "POLICIES", "Placement", "PlacementError", "Plan", "PlanCost", "PlanError",
           "check_plan", "compile_model", "fingerprint", "load_plan", "partition", "place", "plan_cost",
           "plan_schema", "price", "price_work", "read_plan", "work_of"]
