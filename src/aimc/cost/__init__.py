"""Cost models: energy, latency and area of a model on an analog chip.

``aimc.cost.estimate(model_or_workload, chip, inputs=...)`` prices every weight layer
component by component (:mod:`aimc.cost.components`) with the chip preset's cited
``cost:`` parameters (:class:`aimc.cost.params.CostConfig`).

Example:
    >>> import aimc.cost
    >>> r = aimc.cost.estimate(aimc.cost.mvm_workload(256, 256, 64), "pcm-hermes")
    >>> round(r.tops, 1)
    64.0
"""
from __future__ import annotations

from aimc.cost.params import CostConfig
from aimc.cost.workload import BREAKDOWN, LayerCost, LayerWork, extract_workload, mvm_workload

__all__ = ["BREAKDOWN", "CostConfig", "CostReport", "LayerCost", "LayerWork", "estimate",
           "extract_workload", "mvm_workload"]


def __getattr__(name: str):
    # estimate imports aimc.chips, whose spec imports aimc.cost.params: load it lazily.
    if name in ("estimate", "CostReport"):
        from aimc.cost import estimator as _mod

        return getattr(_mod, name)
    raise AttributeError(f"module 'aimc.cost' has no attribute {name!r}")
