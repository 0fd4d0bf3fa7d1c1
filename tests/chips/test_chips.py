"""Chip presets and spec validation: errors name the file, the field and what is allowed."""
import json

import pytest

import aimc
from aimc.chips import ChipSpec, json_schema, load, names
from aimc.config import ConfigError

PRESETS = ["ideal", "pcm", "pcm-hermes", "rram-1t1r", "ecram", "sram-dcim"]


def test_all_presets_ship_and_load():
    assert set(PRESETS) <= set(names())
    for n in PRESETS:
        chip = load(n)
        assert chip.name == n and chip.description
        assert ChipSpec.from_dict(chip.to_dict()) == chip  # versioned round-trip
        if n != "ideal":
            assert chip.sources, f"{n} cites no source"


def test_only_ideal_is_ideal():
    assert [n for n in PRESETS if load(n).is_ideal] == ["ideal"]


def test_unknown_preset_lists_known_ones():
    with pytest.raises(ConfigError, match="unknown chip 'nope'.*pcm-hermes"):
        load("nope")


def _write(tmp_path, text):
    p = tmp_path / "chip.yaml"
    p.write_text(text)
    return p


def test_malformed_yaml_names_file(tmp_path):
    p = _write(tmp_path, "rows: [1, 2\n")
    with pytest.raises(ConfigError, match=r"malformed YAML in .*chip.yaml"):
        load(p)


def test_out_of_range_field_names_file_field_and_limit(tmp_path):
    p = _write(tmp_path, "name: x\nadc: {bits: 40}\n")
    with pytest.raises(ConfigError, match=r"chip.yaml(.|\n)*adc.bits(.|\n)*less than or equal to 24"):
        load(p)


def test_unknown_field_and_device_kind(tmp_path):
    with pytest.raises(ConfigError, match="rowz"):
        load(_write(tmp_path, "rowz: 3\n"))
    with pytest.raises(ConfigError, match=r"device(.|\n)*unknown device kind 'flash'(.|\n)*pcm"):
        load(_write(tmp_path, "device: {kind: flash}\n"))
    with pytest.raises(ConfigError, match=r"device.prog_noise_scale"):
        load(_write(tmp_path, "device: {kind: pcm, prog_noise_scale: -1}\n"))


def test_bad_version_and_top_level(tmp_path):
    with pytest.raises(ConfigError, match="_version"):
        load(_write(tmp_path, "_version: 99\n"))
    with pytest.raises(ConfigError, match="mapping"):
        load(_write(tmp_path, "- 1\n- 2\n"))


def test_user_yaml_file_loads(tmp_path):
    d = load("pcm").to_dict()
    d["name"] = "mine"
    d["rows"] = 128
    import yaml
    p = _write(tmp_path, yaml.safe_dump(d))
    chip = aimc.chips.load(str(p))
    assert chip.rows == 128 and chip.device.kind == "pcm"


def test_json_schema_is_generated():
    schema = json.loads(json_schema())
    assert "rows" in schema["properties"] and "adc" in schema["properties"]


# the pulsed-update section (on-chip training) ------------------------------------------------

def test_pulsed_section_of_presets_is_the_cited_fit():
    from aimc.physics import PULSED_PRESETS

    assert load("rram-1t1r").pulsed == PULSED_PRESETS["reram_sb"]
    assert load("ecram").pulsed == PULSED_PRESETS["ecram"]
    assert [n for n in names() if load(n).pulsed is not None] == ["ecram", "rram-1t1r"]
    for n in ("rram-1t1r", "ecram"):
        assert any("Pulsed response" in s for s in load(n).sources), n


def test_pulsed_section_round_trips_through_dict_and_yaml(tmp_path):
    import yaml

    chip = load("ecram").replace(name="mine", pulsed=load("rram-1t1r").pulsed.replace(up_down=0.1))
    d = chip.to_dict()
    assert d["pulsed"]["kind"] == "soft_bounds" and d["pulsed"]["up_down"] == 0.1
    assert ChipSpec.from_dict(d) == chip
    assert load(_write(tmp_path, yaml.safe_dump(d))) == chip
    no_pulsed = load("pcm").to_dict()
    assert no_pulsed["pulsed"] is None and ChipSpec.from_dict(no_pulsed).pulsed is None
    # a short section takes the PulsedDevice defaults for what it leaves out
    base = {k: v for k, v in load("pcm").to_dict().items() if k != "pulsed"}  # a complete chip (issue 10 item 3)
    short = load(_write(tmp_path, yaml.safe_dump(base) + "pulsed: {kind: soft_bounds, dw_min: 0.01}\n"))
    assert short.pulsed.dw_min == 0.01 and (short.pulsed.w_min, short.pulsed.w_max) == (-1.0, 1.0)


@pytest.mark.parametrize("text, match", [
    ("pulsed: {kind: soft_bounds, dw_min: 0.0}\n", r"pulsed.dw_min(.|\n)*greater than 0"),
    ("pulsed: {kind: soft_bounds, w_min: 0.5}\n", r"pulsed(.|\n)*needs w_min < 0 < w_max"),
    ("pulsed: {kind: magic}\n", r"pulsed.kind(.|\n)*soft_bounds"),
    ("pulsed: {kind: linear_step, gamma_up: 2}\n", r"pulsed.gamma_up(.|\n)*less than or equal to 1"),
    ("pulsed: {kind: linear_step, dw_mni: 0.1}\n", r"pulsed.dw_mni"),
    ("pulsed: 0.002\n", r"pulsed"),
])
def test_bad_pulsed_values_name_the_file_and_field(tmp_path, text, match):
    with pytest.raises(ConfigError, match=r"chip.yaml(.|\n)*" + match):
        load(_write(tmp_path, "name: x\n" + text))


def test_json_schema_includes_the_pulsed_section():
    schema = json.loads(json_schema())
    pulsed = schema["properties"]["pulsed"]
    ref = next(a["$ref"] for a in pulsed["anyOf"] if "$ref" in a).split("/")[-1]
    assert {"type": "null"} in pulsed["anyOf"] and pulsed.get("default") is None
    props = schema["$defs"][ref]["properties"]
    assert props["kind"]["enum"] == ["constant_step", "soft_bounds", "linear_step", "exp_step"]
    assert {"dw_min", "w_max", "w_min", "up_down", "dw_min_dtod", "dw_min_std", "w_bound_dtod"} <= set(props)


@pytest.mark.parametrize("name", names())
def test_every_preset_deploys_a_layer_that_still_computes_after_a_day(name):
    """Each preset programs, drifts a day, compensates and reads a layer whose outputs
    follow the digital ones (a preset whose reads lose the signal, e.g. through first-order
    IR drop out of its range, fails here rather than in `aimc demo`)."""
    import torch

    import aimc

    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 16)
    x = torch.randn(32, 64)
    analog = aimc.convert(lin, name)
    aimc.program(analog, seed=0)
    aimc.drift(analog, 86_400.0)
    aimc.compensate(analog)
    with torch.no_grad():
        y, ref = analog(x), lin(x)
    assert torch.isfinite(y).all()
    cos = torch.nn.functional.cosine_similarity(y.flatten(), ref.flatten(), dim=0)
    assert cos > 0.9, f"{name}: cosine {cos:.3f} to the digital outputs"
