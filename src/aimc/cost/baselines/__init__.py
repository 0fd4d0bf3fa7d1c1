"""Baselines that an analog chip is compared against: von Neumann processors (GPU, CPU)
with a per-layer roofline, and digital SRAM in-memory computing.

Presets live in ``presets/*.yaml`` (every number with its source); ``kind:`` selects the
model (``gpu``/``cpu`` -> :class:`VonNeumannSpec`, ``dimc`` -> :class:`DIMCSpec`).

Example:
    >>> from aimc.graph.workload import mvm_workload
    >>> names()
    ['cpu-xeon', 'dimc-22nm', 'gpu-a100', 'gpu-h100']
    >>> spec = load_baseline("gpu-a100")
    >>> spec.peak_tops["fp16"], spec.mem_bw_GBps
    (312.0, 1555.0)
    >>> [c.name for c in price_baseline(mvm_workload(256, 256), spec)]
    ['mvm']
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

from aimc.config import ConfigError, load_yaml
from aimc.cost.baselines.dimc import DIMCSpec, price_dimc
from aimc.cost.baselines.von_neumann import VonNeumannSpec, price_von_neumann, roofline_arrays
from aimc.chips.cost_params import CostConfig
from aimc.cost.layer_cost import LayerCost
from aimc.graph.workload import LayerWork
__all__ = ["BaselineSpec", "VonNeumannSpec", "DIMCSpec", "load_baseline", "names", "price_baseline",
           "roofline_arrays", "PRESET_DIR"]

#: Either baseline configuration.
BaselineSpec = Union[VonNeumannSpec, DIMCSpec]

PRESET_DIR = Path(__file__).with_name("presets")
_KINDS: dict[str, type[VonNeumannSpec] | type[DIMCSpec]] = {"gpu": VonNeumannSpec, "cpu": VonNeumannSpec,
                                                             "dimc": DIMCSpec}


def names() -> list[str]:
    """Names of the built-in baseline presets."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_baseline(name_or_path: str | Path | BaselineSpec) -> BaselineSpec:
    """Load a baseline by preset name or YAML path (a spec passes through).

    Raises:
        ConfigError: unknown name, unreadable/malformed file, unknown ``kind`` or an
            invalid field -- the message names the file and the field.
    """
    if isinstance(name_or_path, (VonNeumannSpec, DIMCSpec)):
        return name_or_path
    p = Path(name_or_path)
    if not (p.suffix in (".yaml", ".yml") or p.exists()):
        p = PRESET_DIR / f"{name_or_path}.yaml"
        if not p.exists():
            raise ConfigError(f"unknown baseline {str(name_or_path)!r}; built-in: {', '.join(names())} "
                              "(or give a path to a YAML file)")
    data = load_yaml(p)
    kind = data.get("kind")
    if kind not in _KINDS:
        raise ConfigError(f"invalid configuration in {p}:\n  field 'kind': must be one of "
                          f"{sorted(_KINDS)} (got {kind!r})")
    return _KINDS[kind].from_dict(data, source=str(p))


def price_baseline(layers: list[LayerWork], spec: BaselineSpec | str, batch: int = 1,
                   system: CostConfig | None = None) -> list[LayerCost]:
    """Price a workload on a baseline: one :class:`LayerCost` per layer, per inference.

    Args:
        layers: the workload (``extract_workload``, ``mvm_workload``, builders).
        spec: a spec or a preset name/path.
        batch: inferences sharing one read of the weights (von Neumann only; digital IMC
            keeps weights stationary, so its cost per inference does not depend on it).
        system: digital IMC only: the system-level parameters (an analog chip's ``cost``)
            its macros are wrapped in (:func:`~aimc.cost.baselines.dimc.price_dimc`).
    """
    spec = load_baseline(spec)
    if isinstance(spec, DIMCSpec):
        return price_dimc(layers, spec, batch, system)
    return price_von_neumann(layers, spec, batch)
