"""Frozen, validated, versioned configuration objects.

Every configuration in aimc (device models, chip specs, peripherals) is a
:class:`BaseConfig`: a frozen pydantic model that rejects unknown fields, validates
ranges when it is built, and round-trips through a plain ``dict`` carrying a
``_version`` key. Errors are re-raised as :class:`ConfigError`, whose message names the
source (a file, or the class), each field path at fault, the value given and what is
allowed.

Example:
    >>> from aimc.physics.pcm import PCM
    >>> d = PCM().to_dict()
    >>> PCM.from_dict(d) == PCM()
    True
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

__all__ = ["BaseConfig", "ConfigError", "load_yaml"]


class ConfigError(ValueError):
    """A configuration could not be built; the message names the source and fields."""


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        given = e.get("input")
        given_s = "" if isinstance(given, dict) else f" (got {given!r})"
        lines.append(f"  field '{loc}': {e['msg']}{given_s}")
    return "\n".join(lines)


class BaseConfig(BaseModel):
    """Base of all configs: frozen, no unknown fields, versioned dict round-trip.

    Edit a config with ``cfg.model_copy(update={...})`` followed by validation, or more
    simply ``cfg.replace(field=value)``, which re-validates.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, allow_inf_nan=False)
    version: ClassVar[int] = 1

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, v: Any, info: ValidationInfo) -> Any:
        # pydantic's lax mode reads true/false as 1/0 (YAML's yes/no/on/off too); only a
        # field that admits a bool may receive one.
        if (isinstance(v, bool) and info.field_name is not None
                and not _admits_bool(cls.model_fields[info.field_name].annotation)):
            raise ValueError("a boolean (true/false/yes/no) is not allowed here")
        return v

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON/YAML-ready dict with a ``_version`` key."""
        d = self.model_dump(mode="json")
        d["_version"] = self.version
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None):
        """Build and validate from a dict (as written by :meth:`to_dict` or YAML)."""
        source = source or cls.__name__
        if not isinstance(data, dict):
            raise ConfigError(f"invalid configuration in {source}: expected a mapping, got {type(data).__name__}")
        data = dict(data)
        v = data.pop("_version", cls.version)
        if v != cls.version:
            raise ConfigError(
                f"invalid configuration in {source}: field '_version' is {v!r}, "
                f"this aimc reads version {cls.version}"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise ConfigError(_format_validation_error(err, source)) from None

    def replace(self, **changes: Any):
        """Return a validated copy with ``changes`` applied (like ``dataclasses.replace``)."""
        d = self.model_dump()
        d.update(changes)
        return type(self).from_dict(d)


def _admits_bool(annotation: Any) -> bool:
    return annotation is bool or annotation is Any or any(_admits_bool(a) for a in get_args(annotation))


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (no tags that build Python objects) that refuses a key given
    twice in one mapping instead of silently keeping the last value."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool)):
                continue  # unhashable keys: the SafeLoader refuses them below
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_reason(err: yaml.YAMLError) -> str:
    """PyYAML's error on one line: ``line L, column C: problem (context, line L')``."""
    if not isinstance(err, yaml.MarkedYAMLError):
        return " ".join(str(err).split())

    def where(mark: Any) -> str:
        return f"line {mark.line + 1}, column {mark.column + 1}"

    text = f"{where(err.problem_mark)}: {err.problem}" if err.problem_mark else str(err.problem)
    if err.context:
        text += f" ({err.context}" + (f" at {where(err.context_mark)})" if err.context_mark else ")")
    return " ".join(text.split())


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping safely (no Python-object tags, no duplicate keys); errors name
    the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"cannot read {path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as err:
        raise ConfigError(f"malformed YAML in {path}: {_yaml_reason(err)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"invalid configuration in {path}: expected a mapping at the top level")
    return data
