"""Oracle tests of the component formulas in aimc.cost.components."""
import math

import numpy as np
import pytest
import torch

from aimc.cost import components as C


def test_adc_energy_doubles_per_bit():
    e = C.adc_energy_pJ(np.array([4, 5, 8]), fom_fJ=10.0)
    assert np.allclose(e, [0.16, 0.32, 2.56])


def test_array_energy_units():
    # 1 µS * (1 V)² * 1 ns = 1 fJ = 1e-3 pJ
    assert C.array_energy_pJ(1.0, 1.0, 1.0, 1.0) == pytest.approx(1e-3)
    # supply-referred: G V_read V_supply t
    assert C.array_energy_pJ(1.0, 0.2, 1.0, 1.0, v_supply_V=0.8) == pytest.approx(0.16e-3)


def test_exact_array_energy_matches_statistics():
    gen = torch.Generator().manual_seed(0)
    g = torch.rand(64, 32, generator=gen) * 20.0
    x = torch.rand(1000, 64, generator=gen) * 2 - 1
    exact = C.array_energy_exact_pJ(g, x, 0.2, 100.0, "pwm").mean()
    stat = C.array_energy_pJ(float(g.sum()), 0.2, 100.0, float(x.abs().mean()))
    assert float(exact) == pytest.approx(stat, rel=0.02)
    amp = C.array_energy_exact_pJ(g, x, 0.2, 100.0, "amplitude").mean()
    assert float(amp) < float(exact)  # x² < |x| on [-1, 1]


def test_sparse_inputs_cost_less_read_energy():
    g = torch.full((16, 8), 10.0)
    dense = torch.ones(1, 16)
    sparse = dense.clone()
    sparse[0, 8:] = 0
    e = C.array_energy_exact_pJ(g, torch.cat([dense, sparse]), 0.2, 100.0)
    assert float(e[1]) == pytest.approx(float(e[0]) / 2)


def test_read_time_sharing_and_overlap():
    # HERMES: 128 ns PWM + 2 ns read-out, one ADC per column
    assert C.read_time_ns("pwm", 8, 128.0, 1, 256, 256, 2.0, False) == 130.0
    # ISAAC: 16 bit-serial cycles, 128 columns share one 1.28 GS/s ADC, overlapped
    assert C.read_time_ns("bit_serial", 16, 10.0, 1, 128, 1, 0.78125, True) == pytest.approx(1600.0)
    # no overlap: integration then conversions
    assert C.read_time_ns("amplitude", 8, 10.0, 1, 128, 16, 1.0, False, phases=2) == 36.0


def test_read_cycles_and_activity():
    assert C.read_cycles("bit_serial", 8, 2) == 4
    assert C.read_cycles("pwm", 8) == 1
    assert C.input_activity("amplitude", 0.3, 0.5) == 0.3
    with pytest.raises(ValueError, match="input_scheme"):
        C.input_activity("optical", 0.3, 0.5)


def test_weight_conductance_and_areas():
    assert C.weight_conductance_uS(0.5, 0.0, 20.0, 2) == 20.0
    assert C.weight_conductance_uS(0.0, 1.0, 20.0, 1) == 2.0  # both polarities at g_min
    assert C.cell_area_um2(100.0, 10.0) == pytest.approx(0.01)
    a = C.tile_area_mm2(10, 10, 100.0, 10.0, 2, 50.0, 1.0, 0.0)
    assert a == pytest.approx((100 * 0.01 + 100 + 10) * 1e-6)


def test_static_programming_digital():
    assert C.static_energy_pJ(2.0, 3.0) == 6.0  # mW * ns = pJ
    assert C.programming_energy_pJ(10, 3.0, 2.0) == 60.0
    assert C.programming_time_ns(5, 4, 10.0, parallel_tiles=2) == 3 * 4 * 10.0
    e = C.digital_energy_pJ(100, 10, 3, 0.1, 1.0, 2.0, needs_shift_add=True)
    assert e == pytest.approx(100 * 0.1 + 10 * 2 * 1.0 + 10 * 2.0)
    assert math.isclose(C.data_movement_energy_pJ(10, 1.0, 0.5, 2.0), 20.0)
