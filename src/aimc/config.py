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
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

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

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)
    version: ClassVar[int] = 1

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


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with ``yaml.safe_load``; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"malformed YAML in {path}: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"invalid configuration in {path}: expected a mapping at the top level")
    return data
