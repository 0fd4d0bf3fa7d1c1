"""Mixture-of-experts and dense decoder LLMs on 3D analog in-memory computing chips
(Buchel et al., Nat. Comput. Sci. 5 (2025), doi:10.1038/s43588-024-00753-x).

:mod:`.model` (configurations and their weight matrices as ``LayerWorkIO``), :mod:`.mapping`
(the five placement strategies onto tiles x tiers), :mod:`.costs` (op costs from a chip spec
or IBM threedsim's constants), :mod:`.graph` and :mod:`.sim` (the event-driven inference
simulator), :mod:`.gpu` (the GPU roofline baseline) and :mod:`.api` (one call for the CLI).
"""
from aimc.workloads.llm3d.costs import UnitCosts
from aimc.workloads.llm3d.mapping import STRATEGIES, MappingError, Placement, map_model
from aimc.workloads.llm3d.model import MODELS, LLMConfig, load_model, matrices
from aimc.workloads.llm3d.moe import MoEBlock, lm_density, measured_density
from aimc.workloads.llm3d.sim import Router, SimResult, simulate_run

__all__ = ["LLMConfig", "MODELS", "load_model", "matrices", "STRATEGIES", "MappingError", "Placement", "map_model",
           "UnitCosts", "Router", "SimResult", "simulate_run", "MoEBlock", "measured_density", "lm_density"]
