"""Component cost models of an analog in-memory computing chip: pure, vectorised functions.

Units: energy in pJ, time in ns, conductance in µS, voltage in V, power in mW, area in
µm² or mm² as named. Handy identities: ``µS * V² * ns = 1e-3 pJ`` and ``mW * ns = pJ``.
Every function accepts NumPy arrays (one entry per layer) as well as floats; the
parameters (and their sources) live in :class:`~aimc.chips.cost_params.CostConfig`.

Example:
    >>> round(float(adc_energy_pJ(8, fom_fJ=10.1)), 3)   # Walden: FoM * 2^bits
    2.586
    >>> round(array_energy_pJ(g_sum_uS=1000.0, v_read_V=0.2, t_ns=100.0, activity=0.5), 3)
    2.0
    >>> read_time_ns("bit_serial", 16, 100.0, 1, cols=128, adcs=1, adc_conv_ns=0.78125, overlap=True)
    1600.0
"""
from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["input_activity", "read_cycles", "pwm_pulse_ns", "integration_time_ns", "adc_energy_pJ", "dac_energy_pJ", "weight_conductance_uS",
           "array_energy_pJ", "array_energy_exact_pJ", "read_time_ns", "digital_energy_pJ",
           "data_movement_energy_pJ", "static_energy_pJ", "programming_energy_pJ",
           "programming_time_ns", "cell_area_um2", "tile_area_mm2"]

_SCHEMES = ("pwm", "amplitude", "bit_serial")


def _check_scheme(scheme: str) -> None:
    if scheme not in _SCHEMES:
        raise ValueError(f"input_scheme must be one of {', '.join(_SCHEMES)}, got {scheme!r}")


def input_activity(scheme: str, x_mean_sq, x_mean_abs):
    """Fraction of full-scale drive the inputs cause (inputs normalised to [-1, 1]).

    A PWM pulse lasts ``|x| t_int`` at fixed voltage, so current (and driver energy) flows
    for a fraction ``mean|x|``; an amplitude-coded input dissipates ``~ x²`` in the
    devices; a bit-serial input drives a row in the cycles whose bit is 1, on average
    ``~ mean|x|`` of them (exact for uniform inputs, whose bits are 1 half the time).
    """
    _check_scheme(scheme)
    return x_mean_sq if scheme == "amplitude" else x_mean_abs


def read_cycles(scheme: str, input_bits: int | None, dac_bits_per_cycle: int = 1) -> int:
    """Array cycles per read: ``ceil(bits / bits_per_cycle)`` for bit-serial inputs, else 1."""
    _check_scheme(scheme)
    if scheme != "bit_serial":
        return 1
    return max(1, math.ceil((input_bits or 8) / dac_bits_per_cycle))


def pwm_pulse_ns(input_bits: int, t_ref_ns: float, ref_bits: int | None = None) -> float:
    """Full-scale pulse of a pulse-width-modulated signed input, in ns.

    A ``b``-bit signed input has ``2**(b-1) - 1`` magnitude levels; a PWM driver applies
    level ``k`` as ``k`` LSBs of fixed duration, so the full-scale pulse is ``(2**(b-1) - 1)``
    LSBs and halves (``2**(b-2) - 1`` against ``2**(b-1) - 1``: a factor ``2 + 1/(2**(b-2)-1)``)
    per input bit removed. The LSB comes from a measured full-scale pulse ``t_ref_ns`` at
    ``ref_bits``: ``t_lsb = t_ref_ns / (2**(ref_bits-1) - 1)`` (HERMES: 8-bit PWM inputs
    integrated for 128 ns, Khaddam-Aljameh et al., IEEE JSSC 57, 1027 (2022), so
    t_lsb = 128/127 ns). ``ref_bits=None`` returns ``t_ref_ns`` unscaled.

    Example:
        >>> pwm_pulse_ns(8, 128.0, 8), round(pwm_pulse_ns(4, 128.0, 8), 3), pwm_pulse_ns(4, 128.0)
        (128.0, 7.055, 128.0)
    """
    if ref_bits is None:
        return float(t_ref_ns)
    if input_bits < 2 or ref_bits < 2:
        raise ValueError(f"PWM needs signed inputs of at least 2 bits, got input_bits={input_bits}, "
                         f"ref_bits={ref_bits}")
    return float(t_ref_ns) * (2 ** (input_bits - 1) - 1) / (2 ** (ref_bits - 1) - 1)


def integration_time_ns(scheme: str, input_bits: int | None, adc_bits: int | None, t_int_ns: float,
                        pwm_ref_bits: int | None = None, adc_t_lsb_ns: float | None = None) -> float:
    """Integration window of one array read (one cycle, for bit-serial inputs), in ns.

    * ``pwm``: the full-scale pulse :func:`pwm_pulse_ns` (``t_int_ns`` if ``pwm_ref_bits``
      is None); ``amplitude``: ``t_int_ns`` whatever the input bits (the value is in the
      voltage); ``bit_serial``: ``t_int_ns`` per cycle (the bits are in the cycle count,
      :func:`read_cycles`).
    * A counting ADC that converts during integration (``adc_t_lsb_ns`` set) resolves one
      LSB per ``adc_t_lsb_ns`` of full-scale current, so the window is at least
      ``2**adc_bits * adc_t_lsb_ns``; shorter input pulses are stretched to it (their LSB
      lengthens), and the array integrates for that window. HERMES's CCO ADC: 300 ps/LSB
      (Khaddam-Aljameh et al., JSSC 2022), 76.8 ns at 8 bits, within its 128 ns pulse.

    Example:
        >>> integration_time_ns("pwm", 8, 8, 128.0, 8, 0.3), round(integration_time_ns("pwm", 4, 6, 128.0, 8, 0.3), 1)
        (128.0, 19.2)
    """
    _check_scheme(scheme)
    t = pwm_pulse_ns(input_bits or 8, t_int_ns, pwm_ref_bits) if scheme == "pwm" else float(t_int_ns)
    if adc_t_lsb_ns is not None and adc_bits is not None:  # an exact ADC (None) has no counting window
        t = max(t, 2.0 ** adc_bits * adc_t_lsb_ns)
    return t


def adc_energy_pJ(bits, fom_fJ: float):
    """Energy of one conversion from the Walden figure of merit: ``E = FoM * 2**bits``.

    The Walden FoM ``P / (f_s 2^ENOB)`` (R. H. Walden, IEEE JSAC 17, 539 (1999); B. Murmann,
    ADC Performance Survey 1997-2024) is near constant across resolution for
    medium-resolution ADCs, so the energy per conversion doubles per bit.
    """
    return fom_fJ * np.power(2.0, bits) * 1e-3


def dac_energy_pJ(n_inputs, energy_full_pJ: float, activity, cycles: int = 1):
    """Input drivers: ``n_inputs * cycles * E_full * activity``.

    ``E_full`` is the energy of one row drive (one conversion, or one bit-serial cycle) at
    full-scale input: charging the row line ``C V²`` and the driver's bias while the pulse
    is on; a zero input drives nothing.
    """
    return n_inputs * cycles * energy_full_pJ * activity


def weight_conductance_uS(w_mean_abs, g_min_uS: float, g_max_uS: float, devices_per_polarity: int = 1):
    """Mean total conductance of one weight's devices, differential mapping.

    The polarity carrying the weight sits at ``g_min + |w| (g_max - g_min)``, the other at
    ``g_min``, each with ``devices_per_polarity`` devices (``|w|`` normalised to [0, 1]).
    """
    return devices_per_polarity * (2.0 * g_min_uS + w_mean_abs * (g_max_uS - g_min_uS))


def array_energy_pJ(g_sum_uS, v_read_V: float, t_ns, activity, v_supply_V: float | None = None):
    """Crossbar read energy with the input activity, in pJ.

    Two accountings, and the choice matters (for HERMES a factor 4 in array energy):

    * ``v_supply_V=None``: ``Σ G V_read² t a`` -- the energy *dissipated in the devices*
      (``g_sum * V² * t * a * 1e-3``). A lower bound: the row drivers that hold the rows
      at ``V_read`` also burn power.
    * ``v_supply_V`` set: ``Σ G V_read V_supply t a`` -- the energy *drawn from the supply*
      when the read current ``G V_read`` is delivered through linear drivers (or a
      regulator) from ``V_supply``; the driver dissipates ``G V_read (V_supply - V_read)``.
      ``activity`` must then be the mean current fraction (``|x|``, also for amplitude
      inputs).

    pcm-hermes uses the second with ``V_read = 0.2 V`` (an estimate: typical PCM read; the
    HERMES papers state no read voltage or energy split that we could find) and the 0.8 V
    core supply. That accounting was chosen *after* comparing with the measured
    9.76 / 10.5 TOPS/W: it gives 8.78 TOPS/W, the device-only count 29.1 TOPS/W. So the
    HERMES energy figures validate the accounting only as far as a plausible model matches
    a measurement; they are not an independent prediction.

    Example:
        >>> array_energy_pJ(1000.0, 0.2, 100.0, 1.0), array_energy_pJ(1000.0, 0.2, 100.0, 1.0, v_supply_V=0.8)
        (4.0, 16.0)
    """
    return g_sum_uS * v_read_V * (v_supply_V or v_read_V) * t_ns * activity * 1e-3


def array_energy_exact_pJ(g_uS: torch.Tensor, x: torch.Tensor, v_read_V: float, t_int_ns: float,
                          scheme: str = "pwm") -> torch.Tensor:
    """Exact read energy of each input vector on a programmed crossbar.

    Args:
        g_uS: conductances ``(rows, cols)`` (or ``(devices, rows, cols)``, summed over
            devices), in µS.
        x: inputs ``(B, rows)`` normalised to [-1, 1] (as the DAC sees them).
        v_read_V, t_int_ns: full-scale read voltage and integration time.
        scheme: ``pwm`` (row i on for ``|x_i| t``), ``amplitude`` (``V = x_i V_read``) or
            ``bit_serial`` (approximated by ``|x_i|``, see :func:`input_activity`).

    Returns:
        ``(B,)`` energies in pJ: ``Σ_i a(x_i) Σ_j G_ij V² t``.

    Example:
        >>> g = torch.full((4, 3), 10.0)
        >>> array_energy_exact_pJ(g, torch.tensor([[1.0, 0, 0, 0], [0.5, -0.5, 0, 0]]), 0.2, 100.0).tolist()
        [0.12000000476837158, 0.12000000476837158]
    """
    _check_scheme(scheme)
    g_row = g_uS.reshape(-1, *g_uS.shape[-2:]).sum(dim=0).sum(dim=1)  # (rows,)
    a = x.abs() if scheme != "amplitude" else x * x  # (B, rows)
    return (a @ g_row.to(a.dtype)) * (v_read_V ** 2 * t_int_ns * 1e-3)


def read_time_ns(scheme: str, input_bits: int | None, t_int_ns: float, dac_bits_per_cycle: int,
                 cols: int, adcs: int, adc_conv_ns: float, overlap: bool, phases: int = 1) -> float:
    """Time of one tile read (one MVM on one tile).

    Per cycle, ``ceil(cols / adcs)`` conversions share each ADC (multiplexing); with a
    sample-and-hold the conversions of one cycle overlap the next integration, so
    ``t_cycle = max(t_int, share * t_conv)``, otherwise ``t_int + share * t_conv``.
    ``t_read = phases * cycles * t_cycle``.
    """
    share = math.ceil(cols / adcs)
    conv = share * adc_conv_ns
    t_cycle = max(t_int_ns, conv) if overlap else t_int_ns + conv
    return float(phases * read_cycles(scheme, input_bits, dac_bits_per_cycle) * t_cycle)


def digital_energy_pJ(conversions, n_outputs, row_tiles, shift_add_pJ: float, accum_pJ: float,
                      scale_act_pJ: float, needs_shift_add: bool):
    """Digital periphery per MVM: shift-add of bit-serial/sliced partial sums (one per
    conversion), accumulation across row tiles (``outputs * (row_tiles - 1)`` adds), and
    affine scaling + activation once per output."""
    sa = conversions * shift_add_pJ if needs_shift_add else 0.0 * conversions
    return sa + n_outputs * (row_tiles - 1) * accum_pJ + n_outputs * scale_act_pJ


def data_movement_energy_pJ(n_bytes, sram_pJ_per_byte: float, noc_pJ_per_byte_hop: float, hops: float):
    """Buffers and interconnect: each byte is read/written once locally and crosses ``hops`` hops."""
    return n_bytes * (sram_pJ_per_byte + noc_pJ_per_byte_hop * hops)


def static_energy_pJ(power_mW, time_ns):
    """Energy of a constant power over a time: ``mW * ns = pJ``."""
    return power_mW * time_ns


def programming_energy_pJ(n_devices, pulses: float, pulse_pJ: float):
    """Program-and-verify: ``devices * pulses * E_pulse`` (each iteration = program + verify read)."""
    return n_devices * pulses * pulse_pJ


def programming_time_ns(n_tiles, rows: int, row_ns: float, parallel_tiles: int = 1):
    """Rows of a tile are programmed one after the other (columns in parallel); up to
    ``parallel_tiles`` tiles at once."""
    return np.ceil(np.asarray(n_tiles) / parallel_tiles) * rows * row_ns


def cell_area_um2(area_F2: float, tech_node_nm: float) -> float:
    """Unit-cell area: ``A_F2 * F²`` with F in µm."""
    return area_F2 * (tech_node_nm * 1e-3) ** 2


def tile_area_mm2(rows: int, cols: int, cell_area_F2: float, tech_node_nm: float, adcs: int,
                  adc_area_um2: float, dac_area_um2: float, digital_area_um2: float) -> float:
    """Tile area: cells + ADCs + one driver per row + digital periphery, in mm²."""
    um2 = (rows * cols * cell_area_um2(cell_area_F2, tech_node_nm) + adcs * adc_area_um2
           + rows * dac_area_um2 + digital_area_um2)
    return um2 * 1e-6
