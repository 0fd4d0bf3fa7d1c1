"""Sweep files: every bad file is refused before any work, naming the field; nothing is
left behind. A Hypothesis test feeds malformed files (random YAML values in every field,
random text) and checks that each is either a valid sweep or refused with SweepError."""
import string

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimc.sweep.run import run_sweep
from aimc.sweep.spec import SweepError, SweepSpec, expand, load_sweep

BAD = [  # (file text, what the message must name)
    ("grid: {adc.bitz: [4, 8]}\n", "grid.adc.bitz"),
    ("grid: {adc.bits: []}\n", "adc.bits: empty"),
    ("grid: {adc.bits: [four]}\n", "adc.bits"),
    ("grid: {chip: [pcm-hermes, no-such-chip]}\n", "grid.chip"),
    ("chip: no-such-chip\n", "chip"),
    ("seeds: many\n", "seeds"),
    ("seeds: 0\n", "seeds"),
    ("metrics: [accuracy, speed]\n", "metrics"),
    ("modle: digits-cnn\n", "modle"),
    ("grid: {rows: [0]}\n", "rows"),
    ("grid: {t_s: [-1]}\n", "grid.t_s"),
    ("grid: {device.kind: [memristor]}\n", "device"),
    ("random: {n: 3, params: {adc.bits: {int: [8, 2]}}}\n", "adc.bits"),
    ("random: {n: 3, params: {adc.bits: {gauss: [8, 2]}}}\n", "gauss"),
    ("grid: {adc: [1]}\n", "adc"),
    ("grid: {adc.bits: [4]}\ngrid: {adc.bits: [8]}\n", "duplicate key"),
    ("[1, 2]\n", "mapping"),
    ("grid: {adc.bits: [4\n", "malformed YAML"),
    ("checkpoint: /no/such/file.safetensors\n", "checkpoint"),
]


@pytest.mark.parametrize("text,field", BAD)
def test_bad_files_are_refused_before_any_work(tmp_path, text, field):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    run = tmp_path / "run"
    with pytest.raises(SweepError, match=field.replace(".", r"\.")) as e:
        run_sweep(f, run, workers=0)
    assert str(f) in str(e.value)  # the file is named
    assert not run.exists()  # no run directory left behind


def test_a_good_file_expands_its_grid_and_random_points(tmp_path):
    f = tmp_path / "ok.yaml"
    f.write_text("grid: {adc.bits: [4, 8], t_s: [1, 3600]}\n"
                 "random: {n: 3, seed: 5, params: {ir_drop.r_wire_ohm: {uniform: [0.0, 0.4]}}}\nseeds: [7, 9]\n")
    spec, points = load_sweep(f)
    assert spec.name == "ok" and spec.seed_list == [7, 9]
    assert len(points) == 2 * 2 * 3
    assert [p.point_id for p in points] == list(range(12))
    assert {(p.params["adc.bits"], p.params["t_s"]) for p in points} == {(4, 1.0), (4, 3600.0), (8, 1.0),
                                                                           (8, 3600.0)}
    assert all(p.chip.adc.bits == p.params["adc.bits"] for p in points)
    assert all(p.chip.ir_drop.r_wire_ohm == p.params["ir_drop.r_wire_ohm"] for p in points)
    again = expand(spec)  # the random points are drawn from the file's seed
    assert [p.params for p in again] == [p.params for p in points]


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=True),
                     st.text(string.printable, max_size=12))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                       max_leaves=8)
_fields = st.sampled_from(["name", "model", "hidden", "checkpoint", "dataset", "epochs", "max_test", "chip", "t_s",
                           "gdc", "grid", "random", "seeds", "metrics", "chips_per_pass", "batch_size", "threads",
                           "adc.bits", "extra"])
_params = st.sampled_from(["adc.bits", "dac.bits", "rows", "cols", "t_s", "chip", "noise.out_noise", "mapping.slices",
                           "device.kind", "ir_drop.r_wire_ohm", "adc", "nope.x", "adc.bits.x"])
_grids = st.dictionaries(_params, st.lists(_scalars, max_size=3), max_size=3)
_docs = st.dictionaries(_fields, st.one_of(_values, _grids), max_size=5)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_docs)
def test_malformed_sweep_files_are_refused_or_valid(tmp_path, doc):
    f = tmp_path / "h.yaml"
    f.write_text(yaml.safe_dump(doc))
    try:
        spec, points = load_sweep(f)
    except SweepError as e:
        assert str(f) in str(e) and str(e).strip()
        return
    assert isinstance(spec, SweepSpec) and len(points) >= 1


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_random_text_is_refused_or_valid(tmp_path, text):
    f = tmp_path / "t.yaml"
    f.write_text(text, encoding="utf-8")
    try:
        load_sweep(f)
    except SweepError as e:
        assert str(f) in str(e)


def test_the_command_line_refuses_a_bad_file_in_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from aimc.cli.main import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("grid: {adc.bitz: [4]}\n")
    r = CliRunner().invoke(app, ["sweep", "bad.yaml"])
    assert r.exit_code == 2
    err = r.stderr.strip()
    assert err.startswith("error: ") and "grid.adc.bitz" in err and "\n" not in err
    assert not (tmp_path / "runs").exists()
