"""Cost models: energy, latency and area of a model on an analog chip.

``aimc.cost.estimate(model_or_workload, chip, inputs=...)`` prices every weight layer
component by component (:mod:`aimc.cost.components`) with the chip preset's cited
``cost:`` parameters (:class:`aimc.chips.cost_params.CostConfig`).

Example:
    >>> import aimc.cost
    >>> r = aimc.cost.estimate(aimc.cost.mvm_workload(256, 256, 64), "pcm-hermes")
    >>> round(r.tops, 1)
    64.0
"""
from __future__ import annotations

from aimc.chips.cost_params import CostConfig
from aimc.graph.workload import LayerWork, extract_workload, mvm_workload
from aimc.cost.estimator import CostReport, estimate
from aimc.cost.layer_cost import BREAKDOWN, LayerCost

__all__ = ["BREAKDOWN", "CostConfig", "CostReport", "LayerCost", "LayerWork", "estimate",
           "extract_workload", "mvm_workload"]
