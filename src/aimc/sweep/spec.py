"""Sweep files: what to run, validated before any work starts.

A sweep file is YAML (read with ``safe_load`` semantics, duplicate keys refused)::

    name: adc-bits               # default: the file's stem; names the run directory
    model: digits-cnn            # digits-cnn | fashion-cnn | mlp (with hidden:), or
    checkpoint: null             #   a checkpoint of `aimc train` instead
    dataset: digits              # digits | fashion-mnist
    chip: pcm-hermes             # the base chip (preset name or YAML file)
    t_s: 86400                   # time since programming when not swept (s)
    grid:                        # the cartesian product of these values
      adc.bits: [4, 6, 8]        # any ChipSpec field by dotted path
      t_s: [1, 86400, 31536000]  # special: time since programming
      chip: [pcm-hermes, pcm]    # special: the base chip
    random:                      # optional: n random points (times each grid point)
      n: 10
      seed: 0
      params:
        ir_drop.r_wire_ohm: {uniform: [0.0, 1.0]}   # or loguniform, int: [lo, hi], choice: [...]
    seeds: 10                    # chips per point: seeds 0..9, or a list [3, 7, 11]
    metrics: [accuracy, mvm_error, energy_pJ, latency_ns, area_mm2, tops_per_w]

Every point's chip is built (the base chip's dict with the point's overrides, validated
by :class:`aimc.chips.ChipSpec`) when the file is loaded, so an unknown field, an empty
grid, a wrong type, a value out of range or an unknown chip is refused before any work,
with the field named (:class:`SweepError`).

Example:
    >>> spec = SweepSpec.from_dict({"grid": {"adc.bits": [4, 8]}, "seeds": 2})
    >>> [p.params for p in expand(spec)]
    [{'chip': 'pcm-hermes', 't_s': 86400.0, 'adc.bits': 4}, {'chip': 'pcm-hermes', 't_s': 86400.0, 'adc.bits': 8}]
"""
from __future__ import annotations

import copy
import itertools
import math
import random as _random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from aimc.chips import ChipSpec, load
from aimc.config import BaseConfig, ConfigError, load_yaml
from aimc.sweep.montecarlo import DEFAULT_BATCH_SIZE, DEFAULT_CHIPS_PER_PASS

__all__ = ["METRICS", "MODELS", "SweepError", "SweepSpec", "RandomSpec", "Point", "expand", "load_sweep"]

Metric = Literal["accuracy", "mvm_error", "energy_pJ", "latency_ns", "area_mm2", "tops_per_w"]
#: Metrics a sweep can record (columns ``m.<name>``).
METRICS = get_args(Metric)
#: Models a sweep can train (``mlp`` takes ``hidden``).
MODELS = ("digits-cnn", "fashion-cnn", "mlp")
#: Parameters that are not chip-spec fields.
SPECIAL = ("chip", "t_s")
_DISTRIBUTIONS = ("uniform", "loguniform", "int", "choice")


class SweepError(ConfigError):
    """A sweep file was refused; the message names the file and the field."""


class RandomSpec(BaseConfig):
    """``n`` random points, parameters drawn with ``seed`` from ``{dist: args}`` each."""

    n: int = Field(ge=1, le=1_000_000)
    seed: int = Field(0, ge=0)
    params: dict[str, dict[Literal["uniform", "loguniform", "int", "choice"], list[Any]]] = Field(min_length=1)

    @field_validator("params")
    @classmethod
    def _one_distribution(cls, v: dict[str, dict[str, list[Any]]]) -> dict[str, dict[str, list[Any]]]:
        for name, dist in v.items():
            if len(dist) != 1:
                raise ValueError(f"{name}: give exactly one of {', '.join(_DISTRIBUTIONS)}")
            (kind, args), = dist.items()
            if kind == "choice":
                if not args:
                    raise ValueError(f"{name}: choice needs at least one value")
                continue
            if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
                raise ValueError(f"{name}: {kind} needs [low, high] numbers, got {args!r}")
            if not args[0] <= args[1] or (kind == "loguniform" and args[0] <= 0):
                raise ValueError(f"{name}: {kind} needs low <= high{' and low > 0' if kind == 'loguniform' else ''}, "
                                 f"got {args!r}")
            if kind == "int" and not all(isinstance(a, int) for a in args):
                raise ValueError(f"{name}: int needs integer bounds, got {args!r}")
        return v


class SweepSpec(BaseConfig):
    """A sweep (module doc). Every field is checked when it is built."""

    name: str = Field("sweep", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    model: Literal["digits-cnn", "fashion-cnn", "mlp"] = "digits-cnn"
    hidden: list[int] = Field(default_factory=lambda: [32], min_length=1, max_length=8)
    checkpoint: str | None = None
    dataset: Literal["digits", "fashion-mnist"] = "digits"
    epochs: int | None = Field(None, ge=0, le=1000)
    train_seed: int = Field(0, ge=0)
    max_test: int | None = Field(None, ge=1)
    chip: str = "pcm-hermes"
    t_s: float = Field(86400.0, ge=0.0)
    gdc: bool = True
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    random: RandomSpec | None = None
    seeds: int | list[int] = 1
    metrics: list[Metric] = Field(default_factory=lambda: list[Metric](["accuracy"]), min_length=1)
    chips_per_pass: int = Field(DEFAULT_CHIPS_PER_PASS, ge=1, le=100_000)
    batch_size: int = Field(DEFAULT_BATCH_SIZE, ge=1)
    threads: int = Field(1, ge=1, le=1024)

    @field_validator("grid")
    @classmethod
    def _grid_values(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for name, values in v.items():
            if not values:
                raise ValueError(f"{name}: empty list (give at least one value)")
        return v

    @field_validator("seeds")
    @classmethod
    def _seed_values(cls, v: int | list[int]) -> int | list[int]:
        if isinstance(v, int):
            if not 1 <= v <= 1_000_000:
                raise ValueError(f"a number of chips must be 1 .. 1000000, got {v}")
        elif not v or any(s < 0 for s in v) or len(set(v)) != len(v):
            raise ValueError(f"a list of seeds must be non-empty, >= 0 and without repeats, got {v}")
        return v

    @field_validator("metrics")
    @classmethod
    def _unique_metrics(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"a metric is listed twice: {v}")
        return v

    @model_validator(mode="after")
    def _no_param_twice(self) -> "SweepSpec":
        both = set(self.grid) & set(self.random.params if self.random else {})
        if both:
            raise ValueError(f"parameter(s) {sorted(both)} are both in grid and random")
        return self

    @property
    def seed_list(self) -> list[int]:
        """The chips' programming seeds."""
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


@dataclass(frozen=True)
class Point:
    """One point of a sweep: ``params`` (``chip``, ``t_s`` and every swept parameter, in
    column order) and the chip it builds."""

    point_id: int
    params: dict[str, Any]
    chip: ChipSpec

    @property
    def t_s(self) -> float:
        return float(self.params["t_s"])


def _set(d: dict[str, Any], path: str, value: Any, where: str) -> None:
    """Set ``d[a][b] = value`` for ``path`` ``a.b``; unknown fields name ``where``."""
    keys = path.split(".")
    node = d
    for i, k in enumerate(keys):
        if not isinstance(node, dict) or k not in node or k == "_version":
            parent = ".".join(keys[:i]) or "the chip spec"
            known = ", ".join(sorted(x for x in node if x != "_version")) if isinstance(node, dict) else "no fields"
            raise SweepError(f"{where}: unknown chip-spec field {path!r} ({parent} has: {known})")
        if i == len(keys) - 1:
            node[k] = copy.deepcopy(value)
        else:
            node = node[k]


def _draw(rng: _random.Random, kind: str, args: list[Any]) -> Any:
    if kind == "choice":
        return copy.deepcopy(args[rng.randrange(len(args))])
    lo, hi = args
    if kind == "int":
        return rng.randint(lo, hi)
    if kind == "loguniform":
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))
    return rng.uniform(lo, hi)


def _combos(spec: SweepSpec) -> list[dict[str, Any]]:
    grid = [dict(zip(spec.grid, vals)) for vals in itertools.product(*spec.grid.values())] or [{}]
    if spec.random is None:
        return grid
    rng = _random.Random(spec.random.seed)
    draws = [{k: _draw(rng, kind, args) for k, d in spec.random.params.items() for kind, args in d.items()}
             for _ in range(spec.random.n)]
    return [{**g, **r} for g in grid for r in draws]


def expand(spec: SweepSpec, source: str = "sweep") -> list[Point]:
    """All points of ``spec``, each with its validated chip (module doc).

    Raises:
        SweepError: an unknown chip or field, or a value the chip spec refuses (the
            message names ``source``, the parameter and the value).
    """
    bases: dict[str, dict[str, Any]] = {}
    points = []
    for i, combo in enumerate(_combos(spec)):
        params = {"chip": combo.get("chip", spec.chip), "t_s": combo.get("t_s", spec.t_s)}
        params.update({k: v for k, v in combo.items() if k not in SPECIAL})
        field = "grid.chip" if "chip" in spec.grid else "random.params.chip" if "chip" in combo else "chip"
        name = params["chip"]
        if not isinstance(name, str):
            raise SweepError(f"{source}: {field}: a chip is a preset name or YAML file, got {name!r}")
        if name not in bases:
            try:
                bases[name] = load(name).to_dict()
            except (ConfigError, ValueError, KeyError, FileNotFoundError) as e:
                raise SweepError(f"{source}: {field}: {' '.join(str(e).split())}") from None
        t = params["t_s"]
        if isinstance(t, str):  # YAML 1.1 reads 1.0e4 (no exponent sign) as a string; pydantic would take it
            try:
                t = float(t)
            except ValueError:
                pass
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t < math.inf:
            raise SweepError(f"{source}: grid.t_s: a time since programming is a number of seconds >= 0, got {t!r}")
        params["t_s"] = float(t)
        d = copy.deepcopy(bases[name])
        for key, value in params.items():
            if key not in SPECIAL:
                _set(d, key, value, f"{source}: {'random.params' if spec.random and key in spec.random.params else 'grid'}.{key}")
        try:
            chip = ChipSpec.from_dict(d, source=f"point {i}")
        except ConfigError as e:
            swept = ", ".join(f"{k}={v!r}" for k, v in params.items() if k not in SPECIAL)
            raise SweepError(f"{source}: point {i} ({swept}) is not a valid chip: "
                             f"{' '.join(str(e).split())}") from None
        points.append(Point(i, params, chip))
    return points


def load_sweep(path: str | Path) -> tuple[SweepSpec, list[Point]]:
    """Read, validate and expand a sweep file (errors name the file and the field).

    Raises:
        SweepError: anything wrong with the file (module doc).
    """
    path = Path(path)
    try:
        data = load_yaml(path)
        data.setdefault("name", path.stem)
        spec = SweepSpec.from_dict(data, source=str(path))
    except ConfigError as e:
        raise SweepError(str(e)) from None
    if spec.checkpoint is not None and not Path(spec.checkpoint).expanduser().is_file():
        raise SweepError(f"{path}: field 'checkpoint': no such file {spec.checkpoint!r}")
    return spec, expand(spec, str(path))
