"""The worked example of docs/guide/chip-spec.md is a valid chip that prices a model."""
import re
from pathlib import Path

import pytest
import yaml

from aimc.chips.schema import validate
from aimc.cost import estimate
from aimc.graph.workload import mvm_workload

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide" / "chip-spec.md"


def _example() -> dict:
    text = GUIDE.read_text()
    block = re.search(r"<!-- worked-example:start -->\s*```yaml\n(.*?)```\s*<!-- worked-example:end -->", text, re.S)
    assert block, "worked example markers missing from the guide"
    return yaml.safe_load(block.group(1))


def test_worked_example_validates_and_prices(tmp_path):
    p = tmp_path / "acme.yaml"
    p.write_text(yaml.safe_dump(_example()))
    chip = validate(p)
    assert (chip.rows, chip.cols, chip.n_tiles, chip.digital.kind) == (512, 512, 32, "host_cpu")
    work = mvm_workload(512, 512, 8) + mvm_workload(512, 10, 8)
    work[1] = type(work[1])(**{**work[1].__dict__, "name": "head"})
    r = estimate(work, chip, digital=["head"], host_ops={"relu": 512 * 8})
    d = chip.digital
    assert r.layers[1].energy_pJ["host"] == pytest.approx(512 * 10 * 8 * d.mac_pJ)
    assert r.layers[-1].energy_pJ["host"] == pytest.approx(512 * 8 * d.op_pJ["relu"])
    with pytest.raises(ValueError, match="do not price op kind 'sigmoid'"):
        estimate(work, chip, host_ops={"sigmoid": 1})


def test_guide_names_every_section_of_the_schema():
    from aimc.chips.schema import chip_schema
    text = GUIDE.read_text()
    for section in chip_schema()["properties"]:
        if section not in ("name", "description", "sources", "rows", "cols", "n_tiles", "_version"):
            assert f"`{section}:`" in text, section
