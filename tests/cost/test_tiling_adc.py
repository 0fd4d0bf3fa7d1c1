"""The cost model's tiling is the tile read's (TileLayout) and an exact ADC is priced as exact."""
import pytest

import aimc
from aimc.chips import MappingConfig
from aimc.cost import estimate, mvm_workload
from aimc.cost import components as C
from aimc.graph.workload import LayerWork
from aimc.tiles import TileLayout


@pytest.mark.parametrize("chip,k,n", [("pcm-hermes", 300, 20), ("pcm-hermes", 513, 700), ("isaac", 300, 20),
                                      ("isaac", 128, 16), ("isaac", 129, 17)])
def test_tiles_and_utilisation_are_the_tile_layouts(chip, k, n):
    spec = aimc.chips.load(chip)
    r = estimate([LayerWork("fc", "linear", k, n, 1)], spec)
    lay = TileLayout.of((n, k), spec)
    assert r.layers[0].tiles == lay.n_tiles
    assert r.layers[0].utilisation == pytest.approx(lay.utilisation)


def test_more_slices_than_columns_is_refused_naming_the_field():
    spec = aimc.chips.load("pcm-hermes").replace(cols=4, mapping=MappingConfig(slices=8))
    with pytest.raises(ValueError, match="mapping.slices"):
        estimate(mvm_workload(16, 16), spec)


def test_exact_adc_converts_nothing_and_moves_exact_partial_sums():
    """sram-dcim: 8-bit inputs, 8-bit SRAM weights, 256 rows: exact 8 + 8 + 8 = 24-bit partial
    sums accumulated digitally (as the dimc baseline prices them), no ADC conversions."""
    exact = aimc.chips.load("sram-dcim")
    adc8 = exact.replace(adc=exact.adc.replace(bits=8, bound=10.0))
    work = mvm_workload(256, 64, 64)
    r_exact, r_adc8 = estimate(work, exact), estimate(work, adc8)
    assert r_exact.breakdown["adc"] == 0.0
    c = exact.cost
    extra_bytes = 64 * 64 * 1 * (24 - 8) / 8  # n_mvm * N * tiles_in * (24 - 8) bits
    extra = C.data_movement_energy_pJ(extra_bytes, c.sram_pJ_per_byte, c.noc_pJ_per_byte_hop, c.avg_hops)
    assert r_exact.breakdown["data_movement"] - r_adc8.breakdown["data_movement"] == pytest.approx(extra)


def test_exact_adc_on_an_analog_chip_prices_no_conversions_and_float_words():
    """A continuous device has no weight precision: its exact partial sums are float32 words."""
    from aimc.cost.estimator import EXACT_FLOAT_BITS

    spec = aimc.chips.load("pcm-hermes")
    exact = spec.replace(adc=spec.adc.replace(bits=None))
    r, r8 = estimate(mvm_workload(512, 512, 16), exact), estimate(mvm_workload(512, 512, 16), spec)
    assert r.breakdown["adc"] == 0.0 and r8.breakdown["adc"] > 0.0
    c = spec.cost
    extra_bytes = 16 * 512 * 2 * (EXACT_FLOAT_BITS - 8) / 8  # n_mvm * N * tiles_in * extra bits
    extra = C.data_movement_energy_pJ(extra_bytes, c.sram_pJ_per_byte, c.noc_pJ_per_byte_hop, c.avg_hops)
    assert r.breakdown["data_movement"] - r8.breakdown["data_movement"] == pytest.approx(extra)
