"""Property-based tests of the chip YAML reader, ``aimc.chips.load(path)`` (issue 10).

Hypothesis writes chip files -- valid ones, and malformed ones of every kind a user or a
broken disk produces: wrong types, numbers outside the allowed range (NaN and inf
included), unknown keys, a missing ``device:`` or ``adc:`` section, YAML that is not a
mapping, binary garbage, broken syntax, duplicate keys, and tags that would build Python
objects (``!!python/object/apply:os.system``). Every malformed file must be refused with a
:class:`~aimc.config.ConfigError` that names the file (and the field, where one is at
fault); any other exception type is a traceback the user would see, and a malformed file
that loads is a silent acceptance. The field lists and ranges are read from the pydantic
models, so a new field is fuzzed without editing this file.

Fixed seed (``derandomize=True``): 1,250 generated files in all (1,150 malformed), plus 50
without ``device:``/``adc:``.
"""
from __future__ import annotations

import math
import string
import tempfile
import types
import typing
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from annotated_types import Ge, Gt, Le, Lt
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from typer.testing import CliRunner

from aimc.chips import ChipSpec, load
from aimc.chips.spec import FIRST_ORDER_MAX_EPS, REQUIRED_FIELDS
from aimc.config import ConfigError
from aimc.physics import DEVICES

SETTINGS = dict(derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SECTIONS = ["dac", "adc", "noise", "mapping", "ir_drop"]  # flat sections with per-field ranges
#: Sections a chip file must state (issue 10: no silent ideal device, no silent ADC), as
#: the spec declares them (geometry aside).
REQUIRED = [f for f, _ in REQUIRED_FIELDS[""] if f not in ("rows", "cols", "n_tiles")]
#: Strings pydantic reads as a bool; a letters-only string outside these is never a number.
_BOOL_WORDS = {"y", "n", "t", "f", "yes", "no", "on", "off", "true", "false", "inf", "nan",
               "infinity", "e"}


# --- what the models allow ------------------------------------------------------------

def _section_model(name: str) -> type[BaseModel]:
    return typing.cast(type[BaseModel], ChipSpec.model_fields[name].annotation)


def _kind(annotation: Any) -> tuple[str, bool, tuple]:
    """(base kind, optional, literal choices) of a field annotation."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1 and len(args) == 2:
            kind, _, choices = _kind(inner[0])
            return kind, True, choices
        return "other", type(None) in args, ()
    if typing.get_origin(annotation) is Literal:
        return "literal", False, args
    if annotation in (int, float, bool, str):
        return annotation.__name__, False, ()
    if typing.get_origin(annotation) is list and args == (str,):
        return "list[str]", False, ()
    return "other", False, ()


def _bounds(model: type[BaseModel], field: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in model.model_fields[field].metadata:
        for cls, key in ((Ge, "ge"), (Gt, "gt"), (Le, "le"), (Lt, "lt")):
            if isinstance(m, cls):
                out[key] = float(getattr(m, key))
    return out


def _fields() -> list[tuple[str, type[BaseModel], str, str]]:
    """Every scalar field a chip file may hold: (dotted path, model, field, device kind)."""
    rows = [(f, ChipSpec, f, "") for f in ChipSpec.model_fields if _kind(ChipSpec.model_fields[f].annotation)[0] != "other"]
    for s in SECTIONS:
        rows += [(f"{s}.{f}", _section_model(s), f, "") for f in _section_model(s).model_fields]
    for kind in DEVICES.names():
        model = DEVICES.get(kind)
        rows += [(f"device.{f}", model, f, kind) for f in model.model_fields
                 if f != "kind" and _kind(model.model_fields[f].annotation)[0] != "other"]
    return rows


FIELDS = _fields()
RANGED = [r for r in FIELDS if _bounds(r[1], r[2]) and _kind(r[1].model_fields[r[2]].annotation)[0] in ("int", "float")]


# --- valid files ----------------------------------------------------------------------

def _valid_number(kind: str, b: dict[str, float], cap: float) -> st.SearchStrategy:
    lo = b.get("ge", b.get("gt", 0.0))
    hi = min(b.get("le", b.get("lt", cap)), cap)
    if kind == "int":
        return st.integers(int(math.ceil(lo + ("gt" in b))), int(hi - ("lt" in b)))
    return st.floats(lo, hi, exclude_min="gt" in b, exclude_max="lt" in b, allow_nan=False)


@st.composite
def valid_chips(draw) -> dict[str, Any]:
    """A chip file that must load: geometry, a device kind (its fitted defaults), DAC, ADC,
    and any of the other flat sections with in-range values."""
    text = st.text(string.ascii_letters + string.digits + " -_.", max_size=20)
    chip: dict[str, Any] = {"name": draw(text), "description": draw(text),
                            "sources": draw(st.lists(text, max_size=2)),
                            "device": {"kind": draw(st.sampled_from(DEVICES.names()))}}
    for f in ("rows", "cols", "n_tiles"):
        chip[f] = draw(_valid_number("int", _bounds(ChipSpec, f), 4096))
    for s in SECTIONS:
        if s not in REQUIRED and s != "dac" and not draw(st.booleans()):
            continue
        model, sec = _section_model(s), {}
        for f, info in model.model_fields.items():
            kind, optional, choices = _kind(info.annotation)
            if optional and draw(st.booleans()):
                sec[f] = None
            elif kind == "bool":
                sec[f] = draw(st.booleans())
            elif kind == "literal":
                sec[f] = draw(st.sampled_from(choices))
            else:
                sec[f] = draw(_valid_number(kind, _bounds(model, f), 1e3))
        chip[s] = sec
    ir = chip.get("ir_drop")
    if isinstance(ir, dict) and ir.get("mode") == "first_order":  # ChipSpec's cross-field rule
        g_max = DEVICES.get(chip["device"]["kind"])().g_max_uS
        if 1e-6 * ir["r_wire_ohm"] * g_max * (chip["rows"] ** 2 + chip["cols"] ** 2) / 2 > FIRST_ORDER_MAX_EPS:
            ir["mode"] = "exact"  # the first-order formula is out of its range there
    return chip


def _write(data: Any, directory: str, name: str = "chip.yaml") -> Path:
    path = Path(directory) / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def _refused(path: Path, *needles: str) -> str:
    """Load must raise ConfigError naming the file and every needle (any other exception
    type propagates and fails the test with its traceback)."""
    with pytest.raises(ConfigError) as info:
        load(path)
    msg = str(info.value)
    assert str(path) in msg, msg
    for n in needles:
        assert n in msg, (n, msg)
    return msg


def _set(chip: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = chip
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value


@settings(max_examples=100, **SETTINGS)
@given(valid_chips())
def test_valid_files_load_with_the_values_written(chip):
    with tempfile.TemporaryDirectory() as d:
        spec = load(_write(chip, d))
    assert (spec.rows, spec.cols, spec.n_tiles, spec.device.kind) == (chip["rows"], chip["cols"],
                                                                      chip["n_tiles"], chip["device"]["kind"])
    for s in SECTIONS:
        for f, v in chip.get(s, {}).items():
            assert getattr(getattr(spec, s), f) == v, (s, f)


# --- malformed files --------------------------------------------------------------------

_letters = st.text(string.ascii_letters, min_size=1, max_size=8).filter(lambda s: s.lower() not in _BOOL_WORDS)
_containers = st.one_of(st.lists(st.integers(), min_size=1, max_size=3),
                        st.dictionaries(_letters, st.integers(), min_size=1, max_size=2))


def _wrong_values(kind: str, choices: tuple) -> st.SearchStrategy:
    """Values of the wrong type for a field of ``kind`` that pydantic must not coerce."""
    if kind == "int":
        return st.one_of(st.booleans(), _letters, _containers,
                         st.floats(allow_nan=True).filter(lambda x: not float(x).is_integer()))
    if kind == "float":
        return st.one_of(st.booleans(), _letters, _containers)
    if kind == "bool":
        return st.one_of(_letters, _containers, st.integers().filter(lambda i: i not in (0, 1)),
                         st.floats().filter(lambda x: x not in (0.0, 1.0)))
    if kind == "literal":
        return st.one_of(_letters.filter(lambda s: s not in choices), st.integers(), _containers)
    if kind == "list[str]":
        return st.one_of(st.integers(), st.lists(st.integers(), min_size=1, max_size=2),
                         st.dictionaries(_letters, st.integers(), min_size=1, max_size=2))
    return st.one_of(st.integers(), st.floats(), st.booleans(), _containers)  # str


@st.composite
def wrong_type(draw):
    chip = draw(valid_chips())
    path, model, field, device_kind = draw(st.sampled_from(FIELDS))
    kind, _, choices = _kind(model.model_fields[field].annotation)
    if device_kind:
        chip["device"] = {"kind": device_kind}
    _set(chip, path, draw(_wrong_values(kind, choices)))
    return chip, path


@settings(max_examples=250, **SETTINGS)
@given(wrong_type())
def test_wrong_types_are_refused_naming_the_field(case):
    chip, field = case
    with tempfile.TemporaryDirectory() as d:
        _refused(_write(chip, d), f"'{field}'")


@st.composite
def out_of_range(draw):
    chip = draw(valid_chips())
    path, model, field, device_kind = draw(st.sampled_from(RANGED))
    kind = _kind(model.model_fields[field].annotation)[0]
    b = _bounds(model, field)
    options = [st.sampled_from([math.nan, math.inf, -math.inf])] if kind == "float" else []
    lo, hi = b.get("ge", b.get("gt")), b.get("le", b.get("lt"))
    if lo is not None:
        low = (st.integers(max_value=int(math.ceil(lo)) - 1 + ("gt" in b and float(lo).is_integer()))
               if kind == "int" else st.floats(max_value=lo, allow_nan=False, allow_infinity=False))
        low = low.filter(lambda x: x < lo if "ge" in b else x <= lo)
        options.append(low)
    if hi is not None:
        high = (st.integers(min_value=int(math.floor(hi)) + 1 - ("lt" in b and float(hi).is_integer()))
                if kind == "int" else st.floats(min_value=hi, allow_nan=False, allow_infinity=False))
        high = high.filter(lambda x: x > hi if "le" in b else x >= hi)
        options.append(high)
    if device_kind:
        chip["device"] = {"kind": device_kind}
    _set(chip, path, draw(st.one_of(options)))
    return chip, path


@settings(max_examples=250, **SETTINGS)
@given(out_of_range())
def test_out_of_range_numbers_are_refused_naming_the_field(case):
    chip, field = case
    with tempfile.TemporaryDirectory() as d:
        _refused(_write(chip, d), f"'{field}'")


@st.composite
def unknown_key(draw):
    chip = draw(valid_chips())
    where = draw(st.sampled_from(["", "device", *[s for s in SECTIONS if s in chip]]))
    node = chip[where] if where else chip
    known = set(DEVICES.get(chip["device"]["kind"]).model_fields) if where == "device" else (
        set(_section_model(where).model_fields) if where else set(ChipSpec.model_fields) | {"_version"})
    key = draw(st.text(string.ascii_lowercase + "_", min_size=1, max_size=12).filter(lambda k: k not in known))
    node[key] = draw(st.one_of(st.integers(), _letters, st.none()))
    return chip, f"{where}.{key}" if where else key


@settings(max_examples=150, **SETTINGS)
@given(unknown_key())
def test_unknown_keys_are_refused_naming_the_key(case):
    chip, dotted = case
    with tempfile.TemporaryDirectory() as d:
        _refused(_write(chip, d), f"'{dotted}'")


_PY_TAGS = ["!!python/object/apply:os.system ['touch {m}']",
            "!!python/object/apply:subprocess.check_call [['touch', '{m}']]",
            "!!python/object/apply:builtins.exec [\"open('{m}', 'w')\"]",
            "!!python/object/new:pathlib.Path ['{m}']",
            "!!python/name:os.system",
            "!!python/module:os",
            "!!python/object:types.SimpleNamespace {{path: '{m}'}}",
            "!custom {m}"]


@st.composite
def tagged(draw):
    chip = draw(valid_chips())
    path = draw(st.sampled_from([r[0] for r in FIELDS if "." not in r[0] or r[0].split(".")[0] in chip]))
    if path.startswith("device."):
        path = "device.g_max_uS"  # valid for every device kind
    _set(chip, path, "__TAG__")
    return chip, draw(st.sampled_from(_PY_TAGS)), draw(st.booleans())


@settings(max_examples=150, **SETTINGS)
@given(tagged())
def test_python_tags_are_refused_and_never_executed(case):
    chip, tag, whole_document = case
    with tempfile.TemporaryDirectory() as d:
        marker = Path(d) / "pwned"
        payload = tag.format(m=marker)
        text = payload + "\n" if whole_document else yaml.safe_dump(chip, sort_keys=False).replace("__TAG__", payload)
        _refused(_write(text, d), "malformed YAML")
        assert not marker.exists(), "a YAML tag ran code"


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), _letters)
#: YAML documents whose top level is not a mapping: empty files, comments, scalars, lists
#: (of scalars or even of valid chips).
not_a_mapping = st.one_of(
    st.sampled_from(["", "\n", "# only a comment\n", "---\n", "--- null\n", "--- []\n", "null\n", "~\n"]),
    st.one_of(_scalars, st.lists(st.one_of(_scalars, valid_chips()), max_size=3)).map(yaml.safe_dump))


@settings(max_examples=100, **SETTINGS)
@given(not_a_mapping)
def test_yaml_that_is_not_a_mapping_is_refused(text):
    with tempfile.TemporaryDirectory() as d:
        _refused(_write(text, d), "mapping")


@settings(max_examples=150, **SETTINGS)
@given(st.binary(min_size=1, max_size=200), st.sampled_from(["", "rows: 8\n", "device: {kind: pcm}\n"]))
def test_binary_garbage_is_refused_naming_the_file(garbage, prefix):
    with tempfile.TemporaryDirectory() as d:
        path = _write(prefix.encode() + garbage, d)
        try:
            load(path)
        except ConfigError as e:
            assert str(path) in str(e)
        else:  # garbage that happens to be a complete, valid chip file: vanishingly rare
            pytest.fail(f"garbage accepted: {path.read_bytes()!r}")


@st.composite
def broken_syntax(draw):
    lines = yaml.safe_dump(draw(valid_chips()), sort_keys=False).splitlines()
    at = draw(st.integers(0, len(lines)))
    line = draw(st.sampled_from(["bad: [unclosed", "bad: {a: 1", "\tbad: 1", "bad: 'open", "  - : :",
                                 "rows: 1\nrows: 2", "@at: 1", "bad: *undefined_alias"]))
    return "\n".join(lines[:at] + [line] + lines[at:]) + "\n"


@settings(max_examples=100, **SETTINGS)
@given(broken_syntax())
def test_broken_syntax_and_duplicate_keys_are_refused(text):
    with tempfile.TemporaryDirectory() as d:
        _refused(_write(text, d))


@settings(max_examples=50, phases=(Phase.explicit, Phase.reuse, Phase.generate), **SETTINGS)  # no shrinking
@given(valid_chips(), st.sampled_from([[s] for s in REQUIRED] + [REQUIRED]))
def test_a_file_missing_device_or_adc_is_refused_naming_it(chip, missing):
    for s in missing:
        chip.pop(s)
    with tempfile.TemporaryDirectory() as d:
        _refused(_write(chip, d), *(f"'{s}'" for s in missing))


# --- through the CLI ----------------------------------------------------------------------

@pytest.mark.parametrize("text", ["rows: [1, 2\n", "adc: {bits: 40}\n", "- 1\n",
                                  "!!python/object/apply:os.system ['true']\n", "rows: 1\nrows: 2\n"])
def test_cli_refuses_a_bad_chip_file_in_one_line_with_exit_2(tmp_path, text):
    from aimc.cli.main import app

    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    res = CliRunner().invoke(app, ["estimate", "mvm:8x8", "--chip", str(bad)])
    assert res.exit_code == 2, res.output
    assert isinstance(res.exception, SystemExit) and "Traceback" not in res.output
    first, *rest = res.stderr.splitlines()
    assert first.startswith("error: ") and str(bad) in first, res.stderr
    assert all(ln.startswith("  field '") for ln in rest), res.stderr  # one line per bad field
    if "{" not in text:  # not a field error: the whole message is one line
        assert rest == [], res.stderr


def test_binary_chip_file_through_the_cli(tmp_path):
    from aimc.cli.main import app

    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\xff\xfe\x00\x89PNG\x00")
    res = CliRunner().invoke(app, ["estimate", "mvm:8x8", "--chip", str(bad)])
    assert res.exit_code == 2 and "not UTF-8" in res.stderr and str(bad) in res.stderr, res.output


