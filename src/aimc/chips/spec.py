"""Chip specification: what a crossbar chip is, as a frozen, validated config.

A chip is its array geometry, the device model in each cell, the input DAC, the output
ADC, the analog noise at the column outputs, the weight-to-conductance mapping and the
wire resistance; a chip that can be trained on-chip also states how its devices respond to
programming pulses (``pulsed``). All analog quantities inside a tile are normalised: inputs to
``[-1, 1]`` of the DAC full scale, weights to ``[-1, 1]`` of the conductance range
``g_max - g_min``; an output of 1 is the current of one device at ``g_max`` driven at full
input voltage. The ADC full scale (``adc.bound``) and the output noise are in those units,
as in aihwkit's ``out_bound``/``out_noise``.

Example:
    >>> from aimc.chips import load
    >>> chip = load("pcm-hermes")
    >>> chip.rows, chip.adc.bits
    (256, 8)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, SerializeAsAny, field_validator, model_validator

from aimc.config import BaseConfig, ConfigError
from aimc.chips.cost_params import CostConfig
from aimc.chips.digital import DigitalConfig
from aimc.chips.tiers import TiersConfig
from aimc.physics import DEVICES, DeviceModel, PulsedDevice

__all__ = ["ChipSpec", "DACConfig", "ADCConfig", "NoiseConfig", "MappingConfig", "IRDropConfig",
           "REQUIRED_FIELDS", "SECTIONS", "When"]

@dataclass(frozen=True)
class When:
    """When a conditionally required field matters: its section's ``field`` holds one of
    ``values``, or (``minimum``) an integer of at least that. Callable on the section's
    dict, and expressible in JSON Schema (:meth:`schema_if`) -- one statement of the rule."""

    field: str
    values: tuple[Any, ...] = ()
    minimum: int | None = None

    def __call__(self, d: dict[str, Any]) -> bool:
        v = d.get(self.field)
        if self.minimum is not None:
            return isinstance(v, int) and not isinstance(v, bool) and v >= self.minimum
        return any(v == x and type(v) is type(x) for x in self.values)

    def schema_if(self) -> dict[str, Any]:
        """The JSON Schema ``if`` clause of this condition."""
        cond = {"type": "integer", "minimum": self.minimum} if self.minimum is not None else {"enum": list(self.values)}
        return {"properties": {self.field: cond}, "required": [self.field]}


#: What a chip file (or dict) must state, because every one of these changes the physics:
#: section -> ``(field, condition)``; ``condition(section_dict)`` says when the field
#: matters (``None``: always; else a :class:`When`). The Python defaults of the section
#: classes stay for code that builds sections explicitly; a file never falls back on them
#: silently. The published JSON Schema (:func:`aimc.chips.schema.chip_schema`) states the
#: same rules as ``required`` lists and ``if``/``then`` clauses.
REQUIRED_FIELDS: dict[str, tuple[tuple[str, When | None], ...]] = {
    "": (("rows", None), ("cols", None), ("n_tiles", None), ("device", None), ("dac", None), ("adc", None),
         ("noise", None), ("mapping", None), ("ir_drop", None)),
    "dac": (("bits", None), ("noise_management", None), ("bound", When("noise_management", ("none",)))),
    "adc": (("bits", None), ("bound", None), ("bound_management", None),
            ("bm_max_iter", When("bound_management", (True,)))),
    "noise": (("read_noise", None), ("out_noise", None)),
    "mapping": (("weight_scaling", None), ("slices", None), ("slice_base", When("slices", minimum=2))),
    "ir_drop": (("mode", None), ("r_wire_ohm", When("mode", ("first_order", "exact")))),
}


class DACConfig(BaseConfig):
    """Input digital-to-analog conversion.

    Attributes:
        bits: signed resolution (sign + magnitude), e.g. 8 gives 255 levels; ``None`` = exact.
        noise_management: ``abs_max`` scales each input vector by its largest magnitude
            before conversion (undone digitally after the ADC); ``none`` clips to ``bound``.
        bound: input full scale used when ``noise_management`` is ``none``.
    """

    bits: int | None = Field(8, ge=1, le=24)
    noise_management: Literal["abs_max", "none"] = "abs_max"
    bound: float = Field(1.0, gt=0.0)


class ADCConfig(BaseConfig):
    """Output analog-to-digital conversion, one conversion per tile column per MVM.

    Attributes:
        bits: signed resolution; ``None`` = exact (digital accumulation, as in SRAM DIMC).
        bound: full scale in device units (module doc); outputs beyond it saturate.
        bound_management: re-run saturated input vectors with the input scaled down by
            2 each time (at most ``bm_max_iter`` extra passes), as in aihwkit.
        bm_max_iter: maximal number of extra passes.
    """

    bits: int | None = Field(8, ge=1, le=24)
    bound: float = Field(12.0, gt=0.0)
    bound_management: bool = True
    bm_max_iter: int = Field(3, ge=0, le=16)


class NoiseConfig(BaseConfig):
    """Analog noise at the column outputs, before the ADC.

    Attributes:
        read_noise: draw the device model's read noise on every MVM (output-referred:
            ``sqrt(sum_i x_i^2 sigma_ij^2)`` per column, exact for independent devices).
        out_noise: std of additive Gaussian output noise (integrator/ADC thermal noise)
            in device units, per tile column per MVM.
    """

    read_noise: bool = True
    out_noise: float = Field(0.0, ge=0.0, le=100.0)


class MappingConfig(BaseConfig):
    """How weights become conductances.

    Attributes:
        weight_scaling: ``per_column`` maps each tile column's largest weight to
            ``g_max`` (a digital scale per column undoes it); ``per_tensor`` uses one scale
            for the whole matrix.
        slices: devices pairs per weight (G+ - G-), each digitised separately.
        slice_base: significance ratio between consecutive slices; 1 splits the weight
            equally over the slices (noise averages out), ``b > 1`` stores the residual of
            the previous slices amplified by ``b`` (bit slicing).
    """

    weight_scaling: Literal["per_column", "per_tensor"] = "per_column"
    slices: int = Field(1, ge=1, le=8)
    slice_base: float = Field(1.0, ge=1.0, le=1024.0)


class IRDropConfig(BaseConfig):
    """Wire resistance. ``mode``: ``none``, ``first_order`` (fast closed form) or ``exact``
    (sparse nodal solve, arrays up to 256x256); ``r_wire_ohm``: per cell segment."""

    mode: Literal["none", "first_order", "exact"] = "none"
    r_wire_ohm: float = Field(0.0, ge=0.0, le=1e4)


#: Largest first-order IR-drop expansion parameter a chip may use (see ``ChipSpec``).
FIRST_ORDER_MAX_EPS = 0.5


class ChipSpec(BaseConfig):
    """A chip: array geometry, device model, peripherals, noise, mapping and wires.

    Attributes:
        name: preset name or user label.
        description: free text; ``sources``: citations for the numbers.
        rows, cols: unit cells per tile (inputs x outputs).

    ``rows``, ``cols``, ``n_tiles`` and the sections ``device`` .. ``ir_drop`` are required,
    and so are the section fields of :data:`REQUIRED_FIELDS` in a file: a chip file never
    falls back on a default that changes the physics.
        n_tiles: tiles on the chip (used by the compiler and cost models).
        cost: energy, latency and area parameters for :func:`aimc.cost.estimate`, with their
            sources; ``None`` = generic defaults (:class:`~aimc.chips.cost_params.CostConfig`).
        digital: the chip's digital units (host core, SIMD units or a digital CIM macro):
            what running a layer digitally, the non-MVM ops and moving activations between
            the analog cores and those units cost (:class:`~aimc.chips.digital.DigitalConfig`);
            ``None`` = the documented generic unit :data:`~aimc.chips.digital.DEFAULT_DIGITAL`.
        pulsed: the devices' response to programming pulses, in normalised weight units
            (:class:`~aimc.physics.pulsed.PulsedDevice`), for on-chip training
            (:func:`aimc.train.onchip.fit_onchip`); ``None``: the chip is not trained on-chip.
            A section of its own, not part of ``device``: it describes the same cell in other
            units (weights in ``[w_min, w_max]``, not µS), usually from another fit, and keeps
            every section one level deep.
        tiers: 3D stacking (:class:`~aimc.chips.tiers.TiersConfig`): ``n_tiers`` tiers of
            ``rows x cols`` per tile, one active per tile at a time, and the parameters of the
            LLM inference event simulator; ``None``: a planar chip (one array per tile).
    """

    name: str = "custom"
    description: str = ""
    sources: list[str] = Field(default_factory=list)
    rows: int = Field(ge=1, le=65536)
    cols: int = Field(ge=1, le=65536)
    n_tiles: int = Field(ge=1, le=1_000_000)
    device: SerializeAsAny[DeviceModel]
    dac: DACConfig
    adc: ADCConfig
    noise: NoiseConfig
    mapping: MappingConfig
    ir_drop: IRDropConfig
    cost: CostConfig | None = None
    digital: DigitalConfig | None = None
    pulsed: PulsedDevice | None = None
    tiers: TiersConfig | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None):
        """Build from a dict (a chip file): every field of :data:`REQUIRED_FIELDS` must be
        given; a missing one is an error naming the source, the field and the default
        that code-built sections would take."""
        source = source or cls.__name__
        missing = _missing_fields(data) if isinstance(data, dict) else []
        try:
            chip = super().from_dict(data, source)
        except ConfigError as err:
            if not missing:
                raise
            other = [ln for ln in str(err).splitlines()[1:] if "Field required" not in ln]
            raise ConfigError("\n".join([f"invalid configuration in {source}:", *missing, *other])) from None
        if missing:
            raise ConfigError("\n".join([f"invalid configuration in {source}:", *missing]))
        return chip

    @field_validator("device", mode="before")
    @classmethod
    def _device_from_registry(cls, v: Any) -> Any:
        if isinstance(v, DeviceModel):
            return v
        if not isinstance(v, dict) or "kind" not in v:
            raise ValueError(f"must be a mapping with a 'kind' (one of: {', '.join(DEVICES.names())})")
        kind = v["kind"]
        if kind not in DEVICES:
            raise ValueError(f"unknown device kind {kind!r}; allowed: {', '.join(DEVICES.names())}")
        return DEVICES.get(kind).model_validate(v)

    @property
    def n_arrays(self) -> int:
        """Crossbar arrays on the chip: ``n_tiles`` times the tiers per tile (1 if planar)."""
        return self.n_tiles * (self.tiers.n_tiers if self.tiers is not None else 1)

    @model_validator(mode="after")
    def _first_order_ir_drop_in_range(self) -> "ChipSpec":
        """The first-order IR-drop formula (:func:`aimc.physics.circuit.effective_conductance_first_order`)
        is an expansion in ``eps = 1e-6 r g_max (rows^2 + cols^2) / 2`` (its relative
        correction at full conductance); beyond ``eps = 0.5`` it is meaningless (conductances
        can come out negative), so such a chip must use the exact solver."""
        if self.ir_drop.mode != "first_order":
            return self
        eps = 1e-6 * self.ir_drop.r_wire_ohm * self.device.g_max_uS * (self.rows**2 + self.cols**2) / 2
        if eps > FIRST_ORDER_MAX_EPS:
            raise ValueError(f"ir_drop.mode 'first_order' is out of its range here: 1e-6 * r_wire_ohm * g_max_uS * "
                             f"(rows^2 + cols^2) / 2 = {eps:.3g} > {FIRST_ORDER_MAX_EPS} (r_wire_ohm "
                             f"{self.ir_drop.r_wire_ohm}, g_max_uS {self.device.g_max_uS}, {self.rows}x{self.cols}); "
                             "use ir_drop.mode 'exact' or a smaller r_wire_ohm")
        return self

    @property
    def is_ideal(self) -> bool:
        """No noise, no quantisation, no wire resistance: the MVM is exact."""
        return (
            self.device.is_exact
            and self.dac.bits is None
            and self.adc.bits is None
            and self.noise.out_noise == 0.0
            and self.ir_drop.mode == "none"
        )


#: The sections of :data:`REQUIRED_FIELDS` and their classes.
SECTIONS: dict[str, type[BaseConfig]] = {"dac": DACConfig, "adc": ADCConfig, "noise": NoiseConfig,
                                         "mapping": MappingConfig, "ir_drop": IRDropConfig}


def _missing_fields(data: dict[str, Any]) -> list[str]:
    """One ``field 'x.y': ...`` line per required field absent from ``data``."""
    out = []
    for section, fields in REQUIRED_FIELDS.items():
        d = data if not section else data.get(section)
        if not isinstance(d, dict):
            continue  # absent sections are reported at the top level; objects are complete
        for name, when in fields:
            if name in d or (when is not None and not when(d)):
                continue
            path = f"{section}.{name}" if section else name
            if section:
                default = SECTIONS[section].model_fields[name].default
                hint = f"state it (code-built {SECTIONS[section].__name__} defaults to {default!r})"
            else:
                hint = "a chip file must state it"
            out.append(f"  field '{path}': required, it changes the physics; {hint}")
    return out
