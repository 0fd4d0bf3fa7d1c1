"""The published JSON Schema of chip files agrees with the loader (issue 11, item 5).

Hypothesis mutates a valid chip file (a field deleted, or set to a value of another type
or outside its range); whatever the schema accepts the loader must accept too, except for
the cross-field rules a schema cannot state (listed in ``CROSS_FIELD``), and whatever the
loader refuses for a missing or out-of-range field the schema refuses too, naming the
field. Fixed seed; 200 mutations."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aimc.chips import ChipSpec, json_schema, load, names
from aimc.chips.schema import chip_schema, schema_errors, validate
from aimc.cli.main import app
from aimc.config import ConfigError

#: Loader errors that are cross-field rules, outside what the schema states.
CROSS_FIELD = ("must equal g_max_uS / on_off_ratio", "must be below g_max_uS", "p_stuck_on + p_stuck_off",
               "op_pJ and op_elements_per_ns", "give both", "pwm_ref_bits applies", "moved to the chip's digital",
               "is out of its range here")

runner = CliRunner()


def _hermes() -> dict:
    return load("pcm-hermes").to_dict()


def _paths(d: dict, prefix=()) -> list[tuple]:
    out = []
    for k, v in d.items():
        if k in ("sources", "description", "name", "_version"):
            continue
        out.append((*prefix, k))
        if isinstance(v, dict) and k not in ("op_pJ", "op_elements_per_ns"):
            out += _paths(v, (*prefix, k))
    return out


PATHS = _paths(_hermes())
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(-1e3, 1e7, allow_nan=False),
                   st.sampled_from(["abc", "none", "exact", "per_tensor", "simd"]))


@settings(derandomize=True, deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), delete=st.booleans(), value=VALUES)
def test_schema_and_loader_agree(path, delete, value):
    d = _hermes()
    *head, last = path
    target = d
    for k in head:
        target = target[k]
    if delete:
        del target[last]
    else:
        target[last] = value
    errors = schema_errors(d)
    try:
        ChipSpec.from_dict(d, source="mutant.yaml")
        loaded = None
    except ConfigError as e:
        loaded = str(e)
    if not errors:
        assert loaded is None or any(r in loaded for r in CROSS_FIELD), (path, value, loaded)
    if loaded is not None and not any(r in loaded for r in CROSS_FIELD):
        assert errors, (path, value, loaded)
        where = ".".join(map(str, path))
        parent = ".".join(map(str, head)) or "<root>"
        assert any(f"'{where}" in e or f"'{parent}'" in e for e in errors), (errors, where)


@pytest.mark.parametrize("name", names())
def test_every_preset_conforms(name):
    from aimc.chips import _PRESETS
    assert validate(str(_PRESETS / f"{name}.yaml")) == load(name)


def test_schema_states_the_required_rules():
    s = chip_schema()
    assert s["$defs"]["DACConfig"]["allOf"][0] == {
        "if": {"properties": {"noise_management": {"enum": ["none"]}}, "required": ["noise_management"]},
        "then": {"required": ["bound"]}}
    assert set(s["$defs"]["DigitalConfig"]["required"]) >= {"mac_pJ", "op_pJ", "link_pJ_per_byte"}
    assert s["$defs"]["Device_rram"]["properties"]["kind"] == {"const": "rram"}
    assert json.loads(json_schema()) == s


def test_device_checked_against_its_kind():
    d = _hermes()
    d["device"] = {"kind": "rram", "g_max_uS": 40.0, "drift_nu": 0.1}
    assert any("device" in e and "drift_nu" in e for e in schema_errors(d))


def test_cli_schema_and_validate(tmp_path):
    res = runner.invoke(app, ["chips", "schema"])
    assert res.exit_code == 0 and json.loads(res.stdout) == chip_schema()
    good = tmp_path / "good.yaml"
    good.write_text(json.dumps(_hermes()))  # JSON is YAML
    bad = tmp_path / "bad.yaml"
    d = _hermes()
    d["adc"]["bits"] = 40
    del d["mapping"]["slices"]
    bad.write_text(json.dumps(d))
    res = runner.invoke(app, ["chips", "validate", str(good)])
    assert res.exit_code == 0 and "good.yaml: valid (pcm-hermes" in res.stdout
    res = runner.invoke(app, ["chips", "validate", str(good), str(bad)])
    assert res.exit_code == 2
    err = res.stderr.strip()
    assert err.count("\n") == 0 and "bad.yaml" in err
    assert "field 'adc.bits': 40 is greater than the maximum of 24" in err and "field 'mapping.slices': required" in err
