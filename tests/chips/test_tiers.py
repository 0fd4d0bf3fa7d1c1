"""The ``tiers:`` section (3D stacking) and the ``3d-nvm`` preset."""
import pytest

from aimc.chips import load
from aimc.chips.schema import validate
from aimc.config import ConfigError


def test_3d_nvm_preset_states_threedsims_numbers():
    chip = load("3d-nvm")
    t = chip.tiers
    assert (chip.n_tiles, t.n_tiers, chip.rows, chip.cols) == (100, 1024, 512, 512)
    assert (t.mvm_ns, t.mvm_nJ, t.digital_units, t.attention_units, t.unit_static_W) == (100.0, 10.0, 4, 1, 1.0)
    assert chip.n_arrays == 102400 and load("pcm-hermes").n_arrays == 64
    assert any("accelerator.py" in s for s in t.sources)


def test_missing_tier_field_is_named():
    d = load("3d-nvm").to_dict()
    del d["tiers"]["mvm_nJ"]
    with pytest.raises(ConfigError, match=r"field 'tiers': required|field 'tiers\.mvm_nJ': required"):
        validate(d)


def test_bad_tier_count_is_named():
    d = load("3d-nvm").to_dict()
    d["tiers"]["n_tiers"] = 0
    with pytest.raises(ConfigError, match=r"tiers\.n_tiers"):
        validate(d)
