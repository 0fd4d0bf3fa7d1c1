"""The SoC presets against their published headline numbers (and what they cannot show).

* mythic-m1076: Mythic publishes ~25 TOPS (INT8) at 3-4 W for the M1076; a stream of
  8-bit 1024x1024 MVMs filling all 76 tiles must give 25 TOPS within 5 % (the timing was
  fitted to it: this checks the arithmetic and geometry) and a power inside 3-4 W (the
  power split was calibrated to 3.5 W: again arithmetic, not an independent prediction).
* tetramem-mx100: the device numbers of Rao et al., Nature 615, 823 (2023) (2,048 levels,
  256x256 arrays); no MX100 throughput or power was found, so there is no headline figure.
* sram-dcim: the macro's published 89 TOPS/W at 4b x 4b (Chih et al., ISSCC 2021) is
  tested with the dimc baseline (tests/cost/test_baselines.py); here: its digital section.
"""
import pytest

from aimc.chips import load
from aimc.chips.schema import validate
from aimc.cost import estimate
from aimc.graph.workload import mvm_workload


def test_mythic_peak_tops_and_power():
    chip = load("mythic-m1076")
    assert chip.n_tiles * chip.rows * chip.cols == pytest.approx(80e6, rel=0.01)  # "up to 80 M weights"
    r = estimate(mvm_workload(1024, 1024, 76 * 100), chip)
    power_W = r.energy_pJ * 1e-12 * r.throughput_inf_per_s
    assert r.tops == pytest.approx(25.0, rel=0.05)
    assert 3.0 <= power_W <= 4.0
    assert r.utilisation == 1.0 and r.fits


def test_mythic_has_no_dram_so_big_digital_layers_are_refused():
    chip = load("mythic-m1076")
    assert chip.digital.dram_pJ_per_byte is None
    big = mvm_workload(4096, 2048, 1)  # 8 MiB of int8 weights > 4 MiB of SRAM
    with pytest.raises(ValueError, match="no off-chip memory"):
        estimate(big, chip, digital=[big[0].name])


def test_tetramem_device_is_rao_2023_and_its_host_runs_the_digital_ops():
    chip = load("tetramem-mx100")
    assert (chip.rows, chip.cols, chip.device.n_levels) == (256, 256, 2048)
    step = (chip.device.g_max_uS - chip.device.g_min_uS) / (chip.device.n_levels - 1)
    assert step == pytest.approx(2.0, rel=1e-3)
    assert chip.digital.kind == "host_cpu"
    work = mvm_workload(256, 256, 64)
    r = estimate(work, chip, host_ops={"relu": 256 * 64})
    host = r.layers[-1]
    assert host.energy_pJ["host"] == pytest.approx(256 * 64 * chip.digital.op_pJ["relu"])
    # the scalar host is the bottleneck stage: throughput set by its time
    assert r.throughput_inf_per_s == pytest.approx(1e9 / host.latency_ns)


@pytest.mark.parametrize("name", ["mythic-m1076", "tetramem-mx100", "sram-dcim", "pcm-hermes"])
def test_soc_presets_conform_to_the_schema_and_state_digital_units(name):
    from aimc.chips import _PRESETS
    chip = validate(str(_PRESETS / f"{name}.yaml"))
    assert chip.digital is not None and chip.digital.sources
    assert any("ASSUMED" in s for s in chip.digital.sources)


def test_first_order_ir_drop_out_of_its_range_is_refused_naming_the_fields():
    """eps = 1e-6 r g_max (rows^2 + cols^2) / 2 > 0.5: the expansion is meaningless (the
    tetramem-mx100 range with 1 ohm segments gives 272); pcm-hermes (0.20) is accepted."""
    import pytest

    from aimc.chips import load
    from aimc.config import ConfigError

    base = load("tetramem-mx100").to_dict()
    base["ir_drop"] = {"mode": "first_order", "r_wire_ohm": 1.0}
    with pytest.raises((ConfigError, ValueError)) as err:
        type(load("ideal")).from_dict(base, "t.yaml")
    msg = str(err.value)
    assert "ir_drop.mode 'first_order' is out of its range" in msg and "272" in msg and "exact" in msg
    base["ir_drop"] = {"mode": "exact", "r_wire_ohm": 1.0}
    assert type(load("ideal")).from_dict(base, "t.yaml").ir_drop.mode == "exact"
    assert load("pcm-hermes").ir_drop.mode == "first_order"
