"""The deployment plan: a versioned, self-contained JSON file, and its JSON Schema.

A plan says what was compiled (the model's name and the fingerprint of its graph), for
which chip (its whole spec, so the file needs nothing else), what runs where (each
matrix layer analog or digital, and why), where every block sits (round, tile, first
row and column), the pipeline (stages and bottleneck) and what it is expected to cost
and, when measured, what accuracy it keeps. ``aimc run`` executes it, ``aimc estimate``
prices it, ``aimc plan show`` draws it.

Reading a plan validates it twice: against the classes below (types and ranges; an error
names the field) and for consistency (:func:`aimc.compile.check.check_plan`: blocks inside
tiles, no overlaps, every matrix layer assigned, the numbers the cost model recomputes).
The JSON Schema (:func:`plan_schema`, shipped as ``plan.schema.json``) lets other tools
validate a plan without aimc.

Example:
    >>> s = plan_schema()
    >>> s["properties"]["_version"]["const"], "placement" in s["required"]
    (1, True)
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from aimc.config import BaseConfig, ConfigError

__all__ = ["POLICIES", "Plan", "PlanError", "LayerPlan", "PlacementPlan", "Stage", "SchedulePlan", "Expected",
           "AccuracyPlan", "ModelRef", "CompileOptions", "plan_schema", "read_plan", "SCHEMA_FILE"]

#: Assignment policies (:mod:`aimc.compile.assign`).
POLICIES = ("all-analog", "all-digital", "sensitivity", "energy")
#: The shipped JSON Schema of a plan.
SCHEMA_FILE = "plan.schema.json"

_NonNeg = Field(ge=0)


class PlanError(ConfigError):
    """A plan file is malformed or inconsistent; the message names the file and field."""


class ModelRef(BaseConfig):
    """What was compiled: ``spec`` (the MODEL argument), the graph's ``fingerprint``
    (:func:`aimc.compile.compiler.fingerprint`), parameters and the data set it reads."""

    spec: str
    fingerprint: str = Field(pattern=r"^[0-9a-f]{64}$")
    n_params: int = Field(ge=0)
    dataset: str | None = None


class CompileOptions(BaseConfig):
    """How the plan was made: policy and its settings (``budget`` in accuracy points as a
    fraction, ``latency_us`` bound, drift time ``t_s``, ``seeds`` of the sensitivity
    measurement and the one-sided ``confidence`` of the bound the budget is enforced on;
    0.5, the default of plans written before the bound existed, is the point estimate),
    and the overflow rule."""

    policy: Literal["all-analog", "all-digital", "sensitivity", "energy"]
    budget: float | None = Field(None, ge=0.0, le=1.0)
    latency_us: float | None = Field(None, gt=0.0)
    on_overflow: Literal["fail", "multiplex"] = "fail"
    t_s: float = Field(86400.0, ge=0.0)
    seeds: int = Field(3, ge=1, le=1000)
    confidence: float = Field(0.5, ge=0.5, lt=1.0)


class LayerPlan(BaseConfig):
    """One matrix layer: its workload (:class:`aimc.graph.workload.LayerWork` fields), where
    it runs and why, its measured ``sensitivity`` (accuracy drop, fraction, when it alone
    runs analog; None if not measured) and its cost in the plan."""

    name: str = Field(min_length=1)
    kind: str
    in_features: int = Field(ge=1)
    out_features: int = Field(ge=1)
    n_mvm: int = Field(ge=1)
    groups: int = Field(1, ge=1)
    x_mean_sq: float | None = Field(None, ge=0.0, le=1.0)
    x_mean_abs: float | None = Field(None, ge=0.0, le=1.0)
    w_mean_abs: float | None = Field(None, ge=0.0, le=1.0)
    x_elements: int | None = Field(None, ge=1)
    stationary: bool = True
    assign: Literal["analog", "digital"]
    reason: str = ""
    sensitivity: float | None = None
    energy_pJ: float = Field(ge=0.0)
    latency_ns: float = Field(ge=0.0)
    tiles: int = Field(ge=0)


class PlacementPlan(BaseConfig):
    """Blocks as columns (one entry per block, the order of
    :func:`~aimc.compile.partition.partition`): the block (``layer`` index, ``group``,
    ``i_in``, ``j_out``, used ``rows`` and physical ``cols``) and where it sits (``round``,
    ``tile``, first ``row`` and ``col``). ``tiles_per_round``: tiles each round uses;
    ``replicas``: copies of the whole placement on spare tiles (one round only; copy
    ``r`` sits on tile ``tile + r * tiles_per_round[0]``)."""

    sharing: str
    tiles_per_round: list[int]
    replicas: int = Field(1, ge=1)
    layer: list[int]
    group: list[int]
    i_in: list[int]
    j_out: list[int]
    rows: list[int]
    cols: list[int]
    round: list[int]
    tile: list[int]
    row: list[int]
    col: list[int]


class Stage(BaseConfig):
    """One pipeline stage: a layer (or a layer's part in a round) and its latency."""

    round: int = Field(ge=0)
    layer: str
    substrate: Literal["analog", "digital"]
    latency_ns: float = Field(ge=0.0)


class SchedulePlan(BaseConfig):
    """Stages in order; the ``bottleneck`` stage (slowest; sets the pipelined rate)."""

    stages: list[Stage]
    bottleneck: str
    bottleneck_ns: float = Field(ge=0.0)


class Expected(BaseConfig):
    """What the cost model expects per inference (batch 1): energy, latency, pipelined
    throughput, chip area, tiles and rounds, utilisation (used cells / cells of the used
    tiles, and / cells of the chip over all rounds), reprogramming between rounds, the
    energy breakdown, and the same model all digital for comparison."""

    energy_pJ: float = Field(ge=0.0)
    latency_ns: float = Field(ge=0.0)
    throughput_inf_per_s: float = Field(ge=0.0)
    area_mm2: float = Field(ge=0.0)
    tiles_used: int = Field(ge=0)
    rounds: int = Field(ge=1)
    utilisation_used: float = Field(ge=0.0, le=1.0)
    utilisation_chip: float = Field(ge=0.0, le=1.0)
    reprogram_energy_pJ: float = Field(ge=0.0)
    reprogram_time_ns: float = Field(ge=0.0)
    breakdown: dict[str, float]
    all_digital_energy_pJ: float = Field(ge=0.0)


class AccuracyPlan(BaseConfig):
    """Accuracy measured at compile time on ``data`` (``n`` samples): floating point,
    this plan (mean, std over ``seeds`` chips at ``t_s`` after programming, compensated)
    and all-analog for comparison (None if not measured); the standard error ``drop_se``
    of the plan's drop against floating point and its upper confidence bound
    ``drop_upper`` (fractions; :func:`aimc.compile.simulate.drop_bound`), the number the
    budget is enforced on (None in plans written before the bound)."""

    data: str
    n: int = Field(ge=1)
    fp: float = Field(ge=0.0, le=1.0)
    mean: float = Field(ge=0.0, le=1.0)
    std: float = Field(ge=0.0, le=1.0)
    t_s: float = Field(ge=0.0)
    seeds: int = Field(ge=1)
    all_analog: float | None = Field(None, ge=0.0, le=1.0)
    drop_se: float | None = Field(None, ge=0.0)
    drop_upper: float | None = None


class Plan(BaseConfig):
    """A compiled model (module doc). ``chip`` is the full chip spec as a dict
    (:meth:`aimc.chips.ChipSpec.to_dict`), validated when the plan is checked;
    ``host_ops``: the graph's non-MVM work on the host, ``{op kind: elements per
    inference}`` (:meth:`aimc.graph.Graph.host_ops`; empty when the model was not
    captured as a graph)."""

    aimc_version: str
    model: ModelRef
    chip: dict[str, Any]
    options: CompileOptions
    layers: list[LayerPlan] = Field(min_length=1)
    host_ops: dict[str, int] = Field(default_factory=dict)
    placement: PlacementPlan
    schedule: SchedulePlan
    expected: Expected
    accuracy: AccuracyPlan | None = None

    def to_json(self) -> str:
        """The plan as JSON text (with ``_version``)."""
        return json.dumps(self.to_dict(), indent=1) + "\n"


def plan_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a plan file, generated from :class:`Plan`."""
    schema = Plan.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "aimc deployment plan"
    schema["properties"]["_version"] = {"const": Plan.version, "description": "plan format version"}
    schema["required"] = [*schema.get("required", []), "_version"]
    return schema


def shipped_schema() -> dict[str, Any]:
    """The schema shipped with the package (kept equal to :func:`plan_schema` by a test)."""
    return json.loads((resources.files("aimc.compile") / SCHEMA_FILE).read_text(encoding="utf-8"))


def read_plan(path: str | Path) -> Plan:
    """Read and validate a plan file's types and ranges (not its consistency: see
    :func:`aimc.compile.check.load_plan`).

    Raises:
        PlanError: unreadable file, not JSON, or a field of the wrong type or range (the
            message names the file and the field).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"plan file {path} not found") from None
    except UnicodeDecodeError as e:
        raise PlanError(f"cannot read plan {path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise PlanError(f"cannot read plan {path}: {e.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise PlanError(f"plan {path} is not JSON: line {e.lineno}, column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise PlanError(f"plan {path} is not a plan: JSON nested too deeply") from None
    try:
        return Plan.from_dict(data, source=f"plan {path}")
    except ConfigError as e:
        raise PlanError(str(e)) from None
