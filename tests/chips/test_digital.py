"""The ``digital:`` section of a chip spec: validation, round-trip, migration of old files."""
import pytest
import yaml

from aimc.chips import ChipSpec, load, names
from aimc.chips.digital import DEFAULT_DIGITAL, HOST_OP_KINDS, DigitalConfig, default_op_costs
from aimc.config import ConfigError


def _hermes() -> dict:
    return load("pcm-hermes").to_dict()


def test_round_trip_with_version():
    chip = load("pcm-hermes")
    d = chip.digital.to_dict()
    assert d["_version"] == 1 and DigitalConfig.from_dict(d) == chip.digital
    assert ChipSpec.from_dict(chip.to_dict()) == chip


def test_every_field_is_required_in_a_file(tmp_path):
    d = _hermes()
    del d["digital"]["mac_pJ"]
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump(d))
    with pytest.raises(ConfigError, match=r"mine\.yaml[\s\S]*field 'digital\.mac_pJ': Field required"):
        load(p)


@pytest.mark.parametrize("change, match", [
    ({"op_pJ": {"relu": 1.0, "sofmax": 2.0}}, r"digital\.op_pJ\.sofmax\.\[key\]': Input should be 'add'"),
    ({"op_elements_per_ns": {"relu": 0.0}}, r"digital\.op_elements_per_ns\.relu': Input should be greater than 0"),
    ({"op_pJ": {"relu": 1.0}, "op_elements_per_ns": {"relu": 1.0, "add": 2.0}}, r"differ in add"),
    ({"dram_pJ_per_byte": None}, r"give both"),
    ({"kind": "gpu"}, r"digital\.kind"),
])
def test_invalid_digital_sections_name_the_field(change, match):
    d = _hermes()
    d["digital"].update(change)
    with pytest.raises(ConfigError, match=match):
        ChipSpec.from_dict(d)


@pytest.mark.parametrize("old, new", [("digital_mac_pJ", "mac_pJ"), ("digital_macs_per_ns", "macs_per_ns")])
def test_old_cost_fields_get_a_migration_error(old, new):
    d = _hermes()
    d["cost"][old] = 0.3
    with pytest.raises(ConfigError, match=rf"field 'cost'.*'{old}' moved to the chip's digital: section as '{new}'"):
        ChipSpec.from_dict(d, source="old.yaml")


def test_default_digital_derivation():
    energy, rate = default_op_costs(DEFAULT_DIGITAL.macs_per_ns)
    assert set(DEFAULT_DIGITAL.op_pJ) == set(HOST_OP_KINDS)
    for k in HOST_OP_KINDS:
        assert DEFAULT_DIGITAL.op_pJ[k] == pytest.approx(energy[k], abs=1e-4)
        assert DEFAULT_DIGITAL.op_elements_per_ns[k] == pytest.approx(rate[k], abs=1e-4)
    # relu: one FP16 add (0.4 pJ x 0.246) + read and write 2 bytes at 1.25 pJ/byte x 0.246
    assert energy["relu"] == pytest.approx(0.4 * 0.246 + 4 * 1.25 * 0.246)


def test_presets_with_digital_sections_state_sources_and_every_op():
    for name in names():
        d = load(name).digital
        if d is not None:
            assert d.sources, name
            assert set(d.op_pJ) == set(HOST_OP_KINDS), name
