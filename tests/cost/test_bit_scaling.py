"""Bit-aware pricing: PWM read time and energy follow the input levels, a counting ADC's
window follows 2**bits, amplitude and bit-serial inputs follow their own formulas.

Formulas in :func:`aimc.cost.components.pwm_pulse_ns` and
:func:`aimc.cost.components.integration_time_ns`; HERMES parameters from
Khaddam-Aljameh et al., IEEE JSSC 57, 1027 (2022) (8-bit PWM in 128 ns, CCO ADC 300 ps/LSB).
"""
import math

import pytest

import aimc
from aimc.config import ConfigError
from aimc.cost import components as C
from aimc.cost import estimate, mvm_workload
from aimc.chips.cost_params import CostConfig


def _chip(dac_bits: int, adc_bits: int = 8, **cost):
    chip = aimc.chips.load("pcm-hermes")
    return chip.replace(dac=chip.dac.replace(bits=dac_bits), adc=chip.adc.replace(bits=adc_bits),
                        cost=chip.cost.replace(**cost))


def _run(chip):
    return estimate(mvm_workload(256, 256, 64), chip)


def test_pwm_pulse_counts_lsbs():
    # 2**(b-1) - 1 LSBs of 128/127 ns
    for b in range(2, 9):
        assert C.pwm_pulse_ns(b, 128.0, 8) == pytest.approx((2 ** (b - 1) - 1) * 128.0 / 127.0)
    assert C.pwm_pulse_ns(4, 128.0, None) == 128.0  # no reference: fixed pulse (legacy)
    with pytest.raises(ValueError, match="at least 2 bits"):
        C.pwm_pulse_ns(1, 128.0, 8)


@pytest.mark.parametrize("b", [8, 7, 6, 5, 4, 3])
def test_pwm_read_energy_and_time_halve_per_input_bit(b):
    """Without an ADC window bound, array energy and integration time fall by exactly
    (2^(b-1)-1)/(2^(b-2)-1) (2.02 at 8 bits, 3 at 3 bits) per input bit removed."""
    hi, lo = _run(_chip(b, adc_t_lsb_ns=None)), _run(_chip(b - 1, adc_t_lsb_ns=None))
    ratio = (2 ** (b - 1) - 1) / (2 ** (b - 2) - 1)
    assert hi.breakdown["array"] / lo.breakdown["array"] == pytest.approx(ratio, rel=1e-9)
    conv, hop = 2.0, 1.0  # HERMES read-out after integration, one hop
    assert (hi.latency_ns - conv - hop) / (lo.latency_ns - conv - hop) == pytest.approx(ratio, rel=1e-9)
    assert 2.0 <= ratio <= 3.0
    # DAC energy per row drive and ADC energy do not depend on the input bits
    assert hi.breakdown["adc"] == pytest.approx(lo.breakdown["adc"])
    assert hi.breakdown["dac"] == pytest.approx(lo.breakdown["dac"])


def test_counting_adc_window_bounds_integration():
    """HERMES CCO ADC, 300 ps/LSB: at 8-bit inputs the 128 ns pulse covers the 76.8 ns
    8-bit window; at 4-bit inputs (7.06 ns pulse) a 6-bit ADC needs 19.2 ns."""
    assert C.integration_time_ns("pwm", 8, 8, 128.0, 8, 0.3) == 128.0
    assert C.integration_time_ns("pwm", 4, 6, 128.0, 8, 0.3) == pytest.approx(64 * 0.3)
    assert C.integration_time_ns("pwm", 4, 4, 128.0, 8, 0.3) == pytest.approx(7 * 128 / 127)
    assert C.integration_time_ns("amplitude", 4, 6, 10.0, None, 0.3) == pytest.approx(19.2)
    # estimator: the array integrates for the window, and the ADC energy falls 4x for 8 -> 6 bits
    r8, r46 = _run(_chip(8)), _run(_chip(4, 6))
    assert r8.breakdown["array"] / r46.breakdown["array"] == pytest.approx(128.0 / 19.2, rel=1e-9)
    assert r8.breakdown["adc"] / r46.breakdown["adc"] == pytest.approx(4.0)
    assert r46.latency_ns == pytest.approx(19.2 + 2.0 + 1.0)


def test_amplitude_inputs_cost_the_same_at_any_input_bits():
    """Amplitude coding puts the value in the voltage: read time and array energy do not
    depend on the input bits (the ADC still follows FoM * 2^bits)."""
    kw = dict(input_scheme="amplitude", pwm_ref_bits=None, adc_t_lsb_ns=None, t_int_ns=10.0)
    r8, r4, r4a6 = _run(_chip(8, **kw)), _run(_chip(4, **kw)), _run(_chip(4, 6, **kw))
    assert r8.breakdown["array"] == pytest.approx(r4.breakdown["array"])
    assert r8.latency_ns == r4.latency_ns
    assert r4.breakdown["adc"] / r4a6.breakdown["adc"] == pytest.approx(4.0)


@pytest.mark.parametrize("bpc", [1, 2])
def test_bit_serial_cost_follows_cycles(bpc):
    """Bit-serial inputs: ceil(b / bits_per_cycle) reads of t_int_ns each."""
    kw = dict(input_scheme="bit_serial", pwm_ref_bits=None, adc_t_lsb_ns=None, t_int_ns=10.0,
              dac_bits_per_cycle=bpc)
    r8, r4 = _run(_chip(8, **kw)), _run(_chip(4, **kw))
    cyc8, cyc4 = math.ceil(8 / bpc), math.ceil(4 / bpc)
    assert r8.breakdown["array"] / r4.breakdown["array"] == pytest.approx(cyc8 / cyc4)
    assert r8.breakdown["adc"] / r4.breakdown["adc"] == pytest.approx(cyc8 / cyc4)
    assert (r8.latency_ns - 1.0) / (r4.latency_ns - 1.0) == pytest.approx(cyc8 / cyc4)


def test_pwm_ref_bits_only_for_pwm_and_default_unscaled():
    with pytest.raises(ConfigError, match="pwm_ref_bits"):
        CostConfig.from_dict({"input_scheme": "bit_serial", "pwm_ref_bits": 8})
    c = CostConfig()
    assert c.pwm_ref_bits is None and c.adc_t_lsb_ns is None  # presets without them price as before


def test_comparison_low_precision_rows():
    """The README's low-precision rows: pcm-hermes at 4b inputs / 6b ADCs, and the DIMC
    macro at its published 4b x 4b point (Chih et al., ISSCC 2021: 89 TOPS/W)."""
    from aimc.graph.builders import mlp_workload
    from aimc.experiments.cost_compare import LOW_PRECISION, compare

    rows = compare({"mlp": mlp_workload([256, 256])}, low_precision=LOW_PRECISION)
    hw = [r["hardware"] for r in rows]
    assert hw == ["analog (pcm-hermes)", "digital IMC (dimc-22nm + system)", "GPU (gpu-a100)",
                  "analog (pcm-hermes-4b6b)", "digital IMC (dimc-22nm 4b x 4b + system)"]
    by = dict(zip(hw, rows))
    assert by[hw[4]]["core_tops_per_w"] == pytest.approx(89.0)
    assert by[hw[1]]["core_tops_per_w"] == pytest.approx(89.0 / 4)
    assert "4b DAC/6b ADC" in by[hw[3]]["precision"] and "int4 x int4" in by[hw[4]]["precision"]
    assert by[hw[3]]["energy_uJ"] < by[hw[0]]["energy_uJ"]
    assert len(compare({"mlp": mlp_workload([64, 64])}, analog=None, low_precision=LOW_PRECISION)) == 3


def test_mvm_error_accepts_a_chip_spec():
    from aimc.experiments.cost_compare import low_precision_chip, mvm_error

    (e,) = mvm_error(low_precision_chip("pcm-hermes", 4, 6), (1.0,), size=16)
    assert 0.0 < e < 0.5
