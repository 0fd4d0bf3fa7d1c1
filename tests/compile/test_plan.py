"""The plan file: JSON Schema (generated = shipped, plans validate), round trip, and
consistency checks that name the field; malformed files never crash the reader."""
from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from aimc.chips import load
from aimc.compile import PlanError, compile_model, load_plan
from aimc.compile.plan import plan_schema, shipped_schema
from aimc.graph.builders import LayerWorkIO
from aimc.graph.workload import LayerWork
from aimc.outputs import write_text

WORK = [LayerWork("conv", "conv", 9, 16, 64), LayerWork("fc1", "linear", 300, 64, 1),
        LayerWorkIO("qk", "matmul", 8, 16, 16, stationary=False), LayerWork("fc2", "linear", 64, 10, 1)]


@pytest.fixture(scope="module")
def plan():
    return compile_model(WORK, load("pcm-hermes"), "all-analog", spec="test")


@pytest.fixture(scope="module")
def plan_dict(plan):
    return json.loads(plan.to_json())


def test_shipped_schema_is_the_generated_one():
    assert shipped_schema() == json.loads(json.dumps(plan_schema()))


def test_plan_validates_against_its_schema(plan_dict):
    jsonschema.validate(plan_dict, shipped_schema())
    bad = copy.deepcopy(plan_dict)
    bad["layers"][0]["assign"] = "quantum"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, shipped_schema())


def test_round_trip_and_non_stationary_is_digital(plan, plan_dict, tmp_path):
    path = write_text(tmp_path / "p.json", plan.to_json())
    again, chip = load_plan(path)
    assert again == plan and chip.name == "pcm-hermes"
    assert [lp.assign for lp in plan.layers] == ["analog", "analog", "digital", "analog"]
    assert "not stationary" in plan.layers[2].reason


def _edit(d, path, value):
    *head, last = path
    for k in head:
        d = d[k]
    d[last] = value


@pytest.mark.parametrize("path, value, field", [
    (("placement", "tile", 0), 64, "placement.tile[0]"),                      # tile >= n_tiles
    (("placement", "row", 1), 250, "placement.row[1]"),                       # outside the tile
    (("placement", "col", 0), 60, "placement.col"),                           # overlaps another block
    (("placement", "rows", 0), 8, "placement.rows[0]"),                       # not the partition
    (("layers", 2, "assign"), "analog", "layers[2].assign"),                  # attention matmul analog
    (("layers", 3, "name"), "fc1", "layers[3].name"),                         # duplicate layer
    (("expected", "energy_pJ"), 1.0, "expected.energy_pJ"),                  # not what the estimator says
    (("chip", "rows"), 0, "chip"),                                            # chip spec invalid
    (("placement", "tiles_per_round", 0), 7, "placement.tiles_per_round[0]"),
    (("layers", 0, "assign"), "quantum", "layers.0.assign"),                  # schema-level error
    (("_version",), 99, "_version"),
])
def test_inconsistent_plans_name_the_field(plan_dict, tmp_path, path, value, field):
    d = copy.deepcopy(plan_dict)
    _edit(d, path, value)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    with pytest.raises(PlanError, match=rf"(?s){str(p)}.*'{__import__('re').escape(field)}"):
        load_plan(p)


def test_dropping_a_block_is_caught(plan_dict, tmp_path):
    d = copy.deepcopy(plan_dict)
    for f in ("layer", "group", "i_in", "j_out", "rows", "cols", "round", "tile", "row", "col"):
        d["placement"][f].pop()
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    with pytest.raises(PlanError, match="field 'placement.layer': 3 blocks, the analog layers partition into 4"):
        load_plan(p)


def test_not_json_names_the_line(tmp_path):
    p = tmp_path / "p.json"
    p.write_text('{"a": 1,\n oops}')
    with pytest.raises(PlanError, match=r"not JSON: line 2"):
        load_plan(p)


def test_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "plan.json"

    def boom(self, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pathlib.Path.write_text", boom)
    with pytest.raises(OSError):
        write_text(target, "{}")
    assert list(tmp_path.iterdir()) == []


json_values = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False)
                           | st.text(max_size=5), lambda c: st.lists(c, max_size=3)
                           | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=8)


def _paths(d, prefix=()):
    yield prefix
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d[:3]):
            yield from _paths(v, prefix + (i,))


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_malformed_plans_fail_cleanly(plan_dict, tmp_path, data):
    d = copy.deepcopy(plan_dict)
    paths = [p for p in _paths(d) if p]
    path = data.draw(st.sampled_from(paths))
    action = data.draw(st.sampled_from(["replace", "delete"]))
    if action == "delete":
        *head, last = path
        parent = d
        for k in head:
            parent = parent[k]
        del parent[last]
    else:
        _edit(d, path, data.draw(json_values))
    p = tmp_path / "fuzz.json"
    p.write_text(json.dumps(d))
    try:
        load_plan(p)
    except PlanError as e:
        assert str(p) in str(e) and "field '" in str(e) or "expected a mapping" in str(e), str(e)


def test_run_time_fingerprint_names_the_first_difference(plan):
    from aimc.compile.check import check_model

    check_model(plan, WORK)  # the model as compiled
    other = [*WORK[:1], LayerWork("fc1", "linear", 300, 65, 1), *WORK[2:]]
    with pytest.raises(PlanError, match=r"field 'model.fingerprint' .* layer 1: plan has \('fc1', 'linear', 300, 64"):
        check_model(plan, other)
