"""The open chip spec: the JSON Schema of chip files, generated from the config classes,
and validation of a chip file against it.

:func:`chip_schema` starts from pydantic's schema of :class:`~aimc.chips.ChipSpec` and
adds what a *file* must satisfy beyond the Python classes:

* the fields of :data:`~aimc.chips.spec.REQUIRED_FIELDS` become ``required`` (the
  conditional ones as ``if``/``then`` clauses), because a file never falls back on a
  default that changes the physics;
* ``device:`` is checked against the schema of the registered model its ``kind`` names
  (one ``$defs`` entry ``Device_<kind>`` per model of :data:`aimc.physics.DEVICES`);
* an optional top-level ``_version`` (what :meth:`~aimc.config.BaseConfig.to_dict` writes).

:func:`validate` checks a file (or dict) against that schema with ``jsonschema`` and then
builds the :class:`ChipSpec`, whose validators add the cross-field rules a schema cannot
state (``g_min_uS = g_max_uS / on_off_ratio``, matching op tables, ...). Every error names
the field. The schema is published with the docs (``reference/chip-spec.schema.json``)
and printed by ``aimc chips schema``.

Example:
    >>> s = chip_schema()
    >>> s["$schema"], "digital" in s["properties"], s["$defs"]["ADCConfig"]["required"]
    ('https://json-schema.org/draft/2020-12/schema', True, ['bits', 'bound', 'bound_management'])
    >>> schema_errors({"rows": 256, "adc": {"bits": 40}})[:2]
    ["field 'adc.bits': 40 is greater than the maximum of 24", "field 'adc.bound': required"]
"""
from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any

from aimc.chips.spec import REQUIRED_FIELDS, SECTIONS, ChipSpec
from aimc.config import ConfigError, load_yaml
from aimc.physics import DEVICES

__all__ = ["chip_schema", "schema_errors", "validate", "SCHEMA_ID"]

#: The schema's ``$id`` (a name, not a URL the schema is fetched from).
SCHEMA_ID = "urn:aimc:chip-spec"


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    s = ChipSpec.model_json_schema()
    defs = s["$defs"]
    s = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **s, "title": "aimc chip spec"}
    s["properties"]["_version"] = {"const": ChipSpec.version, "description": "format version (optional)"}
    for section, fields in REQUIRED_FIELDS.items():
        target = s if not section else defs[SECTIONS[section].__name__]
        always = [name for name, when in fields if when is None]
        target["required"] = list(dict.fromkeys([*target.get("required", []), *always]))
        rules = [{"if": when.schema_if(), "then": {"required": [name]}} for name, when in fields if when is not None]
        if rules:
            target["allOf"] = rules
    device = defs.pop("DeviceModel")
    kinds = DEVICES.names()
    for kind in kinds:
        sub = DEVICES.get(kind).model_json_schema()
        sub["properties"]["kind"] = {"const": kind}
        sub["required"] = sorted({*sub.get("required", []), "kind"})
        defs[f"Device_{kind}"] = sub
    s["$defs"]["DeviceModel"] = {
        "description": device.get("description", ""), "type": "object", "required": ["kind"],
        "properties": {"kind": {"enum": kinds}},
        "allOf": [{"if": {"properties": {"kind": {"const": k}}, "required": ["kind"]},
                   "then": {"$ref": f"#/$defs/Device_{k}"}} for k in kinds],
    }
    return s


def chip_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a chip file (module doc); a fresh copy each call."""
    return copy.deepcopy(_schema())


def _where(path: Any) -> str:
    return ".".join(str(p) for p in path) or "<root>"


def _line(e: Any) -> str:
    """One error as ``field 'a.b': problem``: a missing property is named as the field; of
    the alternatives of an ``anyOf`` (a number or null), the one that is not a type mismatch."""
    path = list(e.absolute_path)
    if e.validator == "required":
        name = e.message.split("'")[1] if e.message.count("'") >= 2 else "?"
        return f"field '{_where([*path, name])}': required"
    if e.validator in ("anyOf", "oneOf") and e.context:
        pick = [c for c in e.context if c.validator != "type"] or list(e.context)
        if len(pick) == 1 and pick[0].validator != "anyOf":  # an optional section: name the field inside it
            return _line(pick[0])
        msg = " or ".join(dict.fromkeys(c.message for c in pick))
    else:
        msg = e.message
    return f"field '{_where(path)}': {msg}"


def schema_errors(data: Any) -> list[str]:
    """One ``field 'a.b': problem`` line per schema violation of ``data`` (a chip file's
    mapping), sorted by field; ``[]`` when it conforms."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    return sorted({_line(e) for e in validator.iter_errors(data)})


def validate(file_or_data: str | Path | dict[str, Any], source: str | None = None) -> ChipSpec:
    """Check a chip file (YAML path) or mapping against :func:`chip_schema`, then build it.

    Raises:
        ConfigError: every schema violation, one line per field (``field 'adc.bits': ...``),
            or, if the schema is met, the cross-field errors of :meth:`ChipSpec.from_dict`;
            the first line names the source.

    Example:
        >>> validate({"rows": 0})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        aimc.config.ConfigError: chip spec <dict> does not conform to the aimc chip-spec schema:
          field 'adc': required
        ...
          field 'rows': 0 is less than the minimum of 1
    """
    if isinstance(file_or_data, dict):
        data, source = file_or_data, source or "<dict>"
    else:
        data, source = load_yaml(file_or_data), source or str(file_or_data)
    errors = schema_errors(data)
    if errors:
        raise ConfigError("\n".join([f"chip spec {source} does not conform to the aimc chip-spec schema:",
                                     *(f"  {e}" for e in errors)]))
    return ChipSpec.from_dict(data, source=source)
