"""Chip specs: load presets shipped as YAML, or your own YAML file.

Example:
    >>> import aimc
    >>> "pcm-hermes" in aimc.chips.names()
    True
    >>> aimc.chips.load("ideal").is_ideal
    True
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from aimc.chips.digital import DigitalConfig
from aimc.chips.tiers import TiersConfig
from aimc.chips.spec import ADCConfig, ChipSpec, DACConfig, IRDropConfig, MappingConfig, NoiseConfig
from aimc.config import ConfigError, load_yaml

__all__ = ["ChipSpec", "DACConfig", "ADCConfig", "NoiseConfig", "MappingConfig", "IRDropConfig",
           "DigitalConfig", "TiersConfig", "load", "names", "json_schema", "validate"]

_PRESETS = resources.files("aimc.chips") / "presets"


def names() -> list[str]:
    """Names of the chip presets shipped with aimc."""
    return sorted(p.name[: -len(".yaml")] for p in _PRESETS.iterdir() if p.name.endswith(".yaml"))


def load(name_or_path: str | Path | ChipSpec) -> ChipSpec:
    """Load a preset by name, or a chip spec from a YAML file path.

    Raises:
        ConfigError: unknown preset, unreadable or malformed file, or an invalid field;
            the message names the file, the field and what is allowed.
    """
    if isinstance(name_or_path, ChipSpec):
        return name_or_path
    s = str(name_or_path)
    if s in names():
        path = Path(str(_PRESETS / f"{s}.yaml"))
    else:
        path = Path(s)
        if path.suffix.lower() not in (".yaml", ".yml") or not path.exists():
            raise ConfigError(
                f"unknown chip {s!r}: not a preset (known: {', '.join(names())}) "
                f"and not an existing .yaml file"
            )
    return ChipSpec.from_dict(load_yaml(path), source=str(path))


def validate(path: str | Path) -> ChipSpec:
    """Check a chip file against the published JSON Schema, then load it
    (:func:`aimc.chips.schema.validate`; errors name every field at fault)."""
    from aimc.chips.schema import validate as _validate

    return _validate(path)


def json_schema() -> str:
    """JSON Schema of a chip file, as indented JSON (:func:`aimc.chips.schema.chip_schema`:
    required fields, devices checked by their ``kind``)."""
    from aimc.chips.schema import chip_schema

    return json.dumps(chip_schema(), indent=2)
