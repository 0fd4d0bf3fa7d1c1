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
