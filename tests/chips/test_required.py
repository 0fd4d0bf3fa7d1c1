"""A chip file must state every field that changes the physics (issue 10, item 3): a
missing ``device:`` or ``adc:`` used to become the ideal device / default ADC silently."""
import re
from pathlib import Path

import pytest
import yaml

from aimc.chips import ChipSpec, load, names
from aimc.chips.spec import REQUIRED_FIELDS
from aimc.config import ConfigError


def _full() -> dict:
    return load("pcm-hermes").to_dict()


def _write(tmp_path, d) -> Path:
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


@pytest.mark.parametrize("section", [f for f, _ in REQUIRED_FIELDS[""]])
def test_missing_top_level_field_is_an_error_naming_file_and_field(tmp_path, section):
    d = _full()
    del d[section]
    with pytest.raises(ConfigError, match=rf"mine\.yaml[\s\S]*field '{section}': required"):
        load(_write(tmp_path, d))


@pytest.mark.parametrize("path", ["adc.bits", "adc.bound", "adc.bound_management", "dac.bits",
                                  "dac.noise_management", "noise.read_noise", "noise.out_noise",
                                  "mapping.slices", "mapping.weight_scaling", "ir_drop.mode",
                                  "ir_drop.r_wire_ohm"])
def test_missing_section_field_names_it_and_the_default(tmp_path, path):
    section, name = path.split(".")
    d = _full()
    del d[section][name]
    with pytest.raises(ConfigError, match=rf"mine\.yaml[\s\S]*field '{re.escape(path)}': required[\s\S]*defaults to"):
        load(_write(tmp_path, d))


def test_conditional_fields_only_when_they_matter(tmp_path):
    d = _full()
    d["adc"].update(bound_management=False)
    del d["adc"]["bm_max_iter"], d["dac"]["bound"], d["mapping"]["slice_base"]  # unused: fine
    d["ir_drop"] = {"mode": "none"}
    assert load(_write(tmp_path, d)).adc.bound_management is False
    d["adc"]["bound_management"] = True
    with pytest.raises(ConfigError, match=r"adc\.bm_max_iter"):
        load(_write(tmp_path, d))


def test_missing_and_invalid_fields_are_reported_together(tmp_path):
    with pytest.raises(ConfigError, match=r"field 'device': required[\s\S]*adc\.bits[\s\S]*less than or equal to 24"):
        load(_write(tmp_path, {"adc": {"bits": 40}}))


def test_every_preset_states_every_required_field():
    for n in names():
        assert ChipSpec.from_dict(load(n).to_dict()) == load(n)


def test_readme_chip_example_loads(tmp_path):
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = re.search(r"```yaml\n(name: my-chip\n.*?)```", readme, re.S).group(1)
    chip = load(_write(tmp_path, yaml.safe_load(block)))
    assert chip.device.kind == "pcm-hermes" and chip.adc.bound == 12.0
