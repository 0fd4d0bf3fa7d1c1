"""Cost parameters of an analog chip: the optional ``cost:`` section of a chip preset.

Every number a cost model needs that the functional chip spec does not already hold
(array geometry, device conductance range, DAC/ADC resolution and weight slices come from
:class:`~aimc.chips.ChipSpec`). Units are in the field names; each preset lists the source
of every value under ``cost.sources``. A chip without a ``cost:`` section is priced with
the defaults below (a generic 14 nm PCM-like core, see :data:`DEFAULT_SOURCES`).

Example:
    >>> c = CostConfig(input_scheme="bit_serial", t_int_ns=100.0)
    >>> c.phases, c.adc_fom_fJ
    (1, 10.1)
    >>> CostConfig.from_dict({"adcs_per_tile": 0})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    aimc.config.ConfigError: invalid configuration in CostConfig:
      field 'adcs_per_tile': Input should be greater than or equal to 1 (got 0)
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from aimc.config import BaseConfig

__all__ = ["CostConfig", "DEFAULT_SOURCES", "MOVED_TO_DIGITAL"]

#: Former ``cost:`` fields now in the ``digital:`` section (:mod:`aimc.chips.digital`):
#: a file that still states one is refused with a message naming the new field.
MOVED_TO_DIGITAL = {"digital_mac_pJ": "mac_pJ", "digital_macs_per_ns": "macs_per_ns"}

#: Where the defaults come from (used when a chip has no ``cost:`` section).
DEFAULT_SOURCES = [
    "ADC Walden FoM 10.1 fJ/step: L. Kull et al., A 3.1 mW 8b 1.2 GS/s single-channel asynchronous SAR ADC "
    "in 32 nm SOI CMOS, ISSCC 2013 (3.1 mW / (1.2 GS/s * 2^8))",
    "Digital energies: M. Horowitz, Computing's energy problem, ISSCC 2014 (45 nm: 16-bit FP mult 1.1 pJ + add 0.4 pJ, "
    "32-bit int add 0.1 pJ, 8 KB SRAM 64-bit read 10 pJ), scaled to 14 nm / 0.8 V by (14/45)*(0.8/0.9)^2 = 0.246",
    "PCM read voltage 0.2 V: M. Le Gallo et al., Mixed-precision in-memory computing, Nat. Electron. 1, 246 (2018)",
]


class CostConfig(BaseConfig):
    """Energy, latency and area parameters of one analog chip (flat; units in names).

    Attributes:
        tech_node_nm: CMOS node F, for cell areas given in F^2.
        v_read_V: read voltage across a device at full-scale input.
        v_supply_V: if set, the read current is drawn from this supply through linear row
            drivers, so the array costs ``Σ G V_read V_supply t`` (what the supply delivers)
            instead of the ``Σ G V_read² t`` dissipated in the devices alone.
        devices_per_polarity: devices per unit cell and weight sign (HERMES: 2).
        input_scheme: ``pwm`` (pulse width ~ |x|, fixed voltage), ``amplitude`` (voltage ~ x)
            or ``bit_serial`` (one bit-plane of the input per cycle).
        dac_bits_per_cycle: input bits applied per cycle in ``bit_serial`` mode.
        t_int_ns: integration time of one read (pwm: full-scale pulse; bit_serial: one cycle;
            amplitude: the fixed read time). For pwm, the value at ``pwm_ref_bits`` inputs.
        pwm_ref_bits: pwm only: the input bits at which ``t_int_ns`` was measured. When set,
            the pulse is counted in LSBs of fixed duration ``t_int_ns / (2**(ref-1) - 1)``
            and a ``b``-bit signed input's full-scale pulse lasts ``2**(b-1) - 1`` of them
            (:func:`~aimc.cost.components.pwm_pulse_ns`), so read time and array energy halve
            per input bit removed. ``None``: ``t_int_ns`` at every input width.
        adc_t_lsb_ns: counting ADC that converts *during* integration (HERMES's CCO ADC:
            the column current drives an oscillator whose cycles are counted): one LSB per
            ``adc_t_lsb_ns`` at full-scale current, so a ``b``-bit conversion needs an
            integration window of at least ``2**b * adc_t_lsb_ns``; a shorter input pulse
            is stretched to it (:func:`~aimc.cost.components.integration_time_ns`). ``None``:
            no such bound (the conversion time is ``adc_conv_ns`` at any resolution).
        phases: reads per MVM (HERMES four-phase high-precision mode: 4).
        dac_energy_pJ: driver/DAC energy per input row per read (per cycle for bit_serial) at
            full-scale input; scaled by the input activity (pwm, bit_serial: mean |x|;
            amplitude: mean x^2).
        adc_fom_fJ: Walden figure of merit; one conversion costs ``adc_fom_fJ * 2**bits`` fJ.
        adcs_per_tile: ADCs per tile; ``cols / adcs_per_tile`` columns share one ADC.
        adc_conv_ns: time per conversion (or read-out after integration, for ADCs that
            convert during integration).
        adc_overlap: sample-and-hold lets conversions of one cycle overlap the next integration.
        array_read_pJ: if set, array energy per tile read (per cycle) at full activity from a
            design's own table, instead of sum(G) V^2 t from the device conductances; it is
            the energy of a ``t_int_ns`` read and scales with the integration window when
            ``pwm_ref_bits`` / ``adc_t_lsb_ns`` change that window.
        shift_add_pJ: per conversion, merging bit-serial / bit-sliced partial sums.
        accum_pJ: per output, adding the partial sums of two row tiles.
        scale_act_pJ: per output, affine scaling and activation.
        sram_pJ_per_byte: local buffer energy per byte read or written.
        noc_pJ_per_byte_hop: on-chip interconnect energy per byte per hop.
        avg_hops: mean hops between producer and consumer tiles.
        hop_latency_ns: latency of one hop.
        buffer_power_mW: per active tile, buffers/bus/router power while it reads (data movement).
        digital_power_mW: per active tile, digital-unit power while it reads.
        static_power_mW: whole chip, always on (leakage, clocks, I/O links).
        program_pulse_pJ: energy of one program or verify pulse on one device.
        program_pulses: mean program-and-verify pulses per device.
        program_row_ns: time to program one row of a tile (rows are programmed one by one).
        cell_area_F2: unit-cell area in F^2 (all devices of one weight position).
        adc_area_um2, dac_area_um2: per ADC and per row driver.
        tile_digital_area_um2: per tile: buffers, digital periphery, its share of routers.
        chip_extra_area_mm2: chip-level blocks outside the tiles (I/O, global units).
        tile_area_mm2: measured tile (core) area; overrides the component sum when set.
        sources: citation of every value.
    """

    tech_node_nm: float = Field(14.0, gt=0.0, le=1000.0)
    v_read_V: float = Field(0.2, gt=0.0, le=10.0)
    v_supply_V: float | None = Field(None, gt=0.0, le=10.0)
    devices_per_polarity: int = Field(1, ge=1, le=16)
    input_scheme: Literal["pwm", "amplitude", "bit_serial"] = "pwm"
    dac_bits_per_cycle: int = Field(1, ge=1, le=16)
    t_int_ns: float = Field(128.0, gt=0.0, le=1e6)
    pwm_ref_bits: int | None = Field(None, ge=2, le=16)
    phases: int = Field(1, ge=1, le=16)
    dac_energy_pJ: float = Field(0.5, ge=0.0, le=1e6)
    adc_fom_fJ: float = Field(10.1, ge=0.0, le=1e6)
    adcs_per_tile: int = Field(256, ge=1, le=65536)
    adc_conv_ns: float = Field(2.0, ge=0.0, le=1e6)
    adc_t_lsb_ns: float | None = Field(None, gt=0.0, le=1e3)
    adc_overlap: bool = False
    array_read_pJ: float | None = Field(None, ge=0.0, le=1e9)
    shift_add_pJ: float = Field(0.02, ge=0.0, le=1e6)
    accum_pJ: float = Field(0.025, ge=0.0, le=1e6)
    scale_act_pJ: float = Field(0.37, ge=0.0, le=1e6)
    sram_pJ_per_byte: float = Field(0.31, ge=0.0, le=1e6)
    noc_pJ_per_byte_hop: float = Field(0.1, ge=0.0, le=1e6)
    avg_hops: float = Field(1.0, ge=0.0, le=1e4)
    hop_latency_ns: float = Field(1.0, ge=0.0, le=1e6)
    buffer_power_mW: float = Field(0.0, ge=0.0, le=1e6)
    digital_power_mW: float = Field(0.0, ge=0.0, le=1e6)
    static_power_mW: float = Field(0.0, ge=0.0, le=1e9)
    program_pulse_pJ: float = Field(10.0, ge=0.0, le=1e9)
    program_pulses: float = Field(10.0, ge=0.0, le=1e6)
    program_row_ns: float = Field(1000.0, ge=0.0, le=1e12)
    cell_area_F2: float = Field(100.0, gt=0.0, le=1e7)
    adc_area_um2: float = Field(100.0, ge=0.0, le=1e9)
    dac_area_um2: float = Field(5.0, ge=0.0, le=1e9)
    tile_digital_area_um2: float = Field(50000.0, ge=0.0, le=1e12)
    chip_extra_area_mm2: float = Field(0.0, ge=0.0, le=1e6)
    tile_area_mm2: float | None = Field(None, gt=0.0, le=1e6)
    sources: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        if isinstance(data, dict):
            old = [k for k in MOVED_TO_DIGITAL if k in data]
            if old:
                raise ValueError("; ".join(f"'{k}' moved to the chip's digital: section as '{MOVED_TO_DIGITAL[k]}'"
                                           for k in old) + " (one place for the digital units, "
                                 "see docs/guide/chip-spec.md#digital-units)")
        return data

    @model_validator(mode="after")
    def _check(self):
        if self.pwm_ref_bits is not None and self.input_scheme != "pwm":
            raise ValueError(f"pwm_ref_bits applies to input_scheme 'pwm' only (input_scheme is "
                             f"{self.input_scheme!r}; leave pwm_ref_bits unset)")
        return self
