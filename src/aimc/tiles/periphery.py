"""A chip's tile periphery as one object: input scaling, DAC, ADC, output noise, bound
management — the semantics every read of the package takes from here.

Units (:mod:`aimc.chips.spec`): tile inputs are in units of the DAC full scale, weights in
units of ``g_max - g_min``, outputs ("device units") in the current of one ``g_max``
device at full input. The converters are signed and uniform (:mod:`aimc.physics.periphery`):
``dac_max = 2^(bits-1) - 1`` input codes, ``adc_max`` output codes over ``[-adc.bound,
adc.bound]`` (``adc_lsb = bound / adc_max`` device units). ``None`` is exact: no
conversion, no clipping (an exact ADC is digital accumulation, as in SRAM DIMC).

Input scaling before the DAC: a static range when one is given (learned by HAT),
otherwise per input vector by its abs-max (``dac.noise_management: abs_max``) or the fixed
``dac.bound`` (``none``). Bound management (aihwkit's ``BoundManagementType.ITERATIVE``):
vectors whose ADC saturated are re-read with the input scale doubled, at most
``adc.bm_max_iter`` times; it needs an ADC to saturate.

Example:
    >>> from aimc.chips import load
    >>> p = Periphery.of(load("pcm-hermes"))
    >>> p.dac_max, p.adc_max, round(p.adc_lsb, 4), p.bound_management
    (127, 127, 0.0787, False)
    >>> Periphery.of(load("sram-dcim")).adc_lsb is None  # exact ADC
    True
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from aimc.physics.periphery import max_code

__all__ = ["Periphery", "exact_psum_bits", "perfect_io_read"]


@dataclass(frozen=True)
class Periphery:
    """Converters, scaling and output noise of a chip's tiles (module doc).

    Attributes:
        dac_max: largest input code, or None (exact DAC).
        abs_max: per-vector abs-max input scaling (else the fixed ``dac_bound``).
        dac_bound: input full scale without abs-max scaling.
        adc_max: largest output code, or None (exact ADC).
        adc_bound: ADC full scale, device units.
        bound_management: re-read saturated vectors (only with an ADC).
        bm_max_iter: most re-reads.
        out_noise: std of the additive output noise, device units.
    """

    dac_max: int | None
    abs_max: bool
    dac_bound: float
    adc_max: int | None
    adc_bound: float
    bound_management: bool
    bm_max_iter: int
    out_noise: float

    @classmethod
    def of(cls, chip) -> "Periphery":
        """The periphery of a :class:`~aimc.chips.ChipSpec`."""
        adc_max = max_code(chip.adc.bits)
        bm = bool(chip.adc.bound_management) and adc_max is not None and chip.adc.bm_max_iter > 0
        return cls(dac_max=max_code(chip.dac.bits), abs_max=chip.dac.noise_management == "abs_max",
                   dac_bound=float(chip.dac.bound), adc_max=adc_max, adc_bound=float(chip.adc.bound),
                   bound_management=bm, bm_max_iter=int(chip.adc.bm_max_iter) if bm else 0,
                   out_noise=float(chip.noise.out_noise))

    @property
    def adc_lsb(self) -> float | None:
        """ADC step in device units (None: exact)."""
        return None if self.adc_max is None else self.adc_bound / self.adc_max

    @property
    def out_unit(self) -> float:
        """Device units per output code (1 for an exact ADC: outputs stay in device units)."""
        return 1.0 if self.adc_max is None else self.adc_bound / self.adc_max

    @property
    def in_unit(self) -> float:
        """Full-scale inputs per input code (1 for an exact DAC)."""
        return 1.0 if self.dac_max is None else 1.0 / self.dac_max

    @property
    def codes_per_unit(self) -> float:
        """Output codes per (weight unit x input code): the tile read's matrix scale."""
        return self.in_unit / self.out_unit

    @property
    def out_var_codes(self) -> float:
        """Variance of the output noise in output codes squared."""
        return (self.out_noise / self.out_unit) ** 2

    def input_scale(self, x: torch.Tensor, input_range: float | torch.Tensor | None = None) -> torch.Tensor:
        """Full scale of each input vector ``x`` (B, in) -> (B, 1) (module doc; a zero
        vector gets scale 1). ``input_range``: a static scale (float or 0-d tensor)."""
        if input_range is not None:
            if isinstance(input_range, torch.Tensor):
                return input_range.expand(x.shape[0], 1)
            return torch.full((x.shape[0], 1), float(input_range), dtype=x.dtype, device=x.device)
        if self.abs_max:
            amax = x.detach().abs().amax(dim=1, keepdim=True)
            return torch.where(amax > 0, amax, torch.ones_like(amax))
        return torch.full((x.shape[0], 1), self.dac_bound, dtype=x.dtype, device=x.device)

    def psum_bits(self, input_bits: int, weight_bits: int, rows: int) -> int:
        """Bits of one column's output word: the ADC's, or the exact digital partial sum
        ``b_x + b_w + ceil(log2 rows)`` for an exact ADC (as :mod:`aimc.cost.baselines.dimc`)."""
        if self.adc_max is not None:
            return int(math.log2(self.adc_max + 1)) + 1
        return exact_psum_bits(input_bits, weight_bits, rows)


def exact_psum_bits(input_bits: int, weight_bits: int, rows: int) -> int:
    """Width of an exact sum of ``rows`` products of signed ``input_bits`` x ``weight_bits``
    integers: ``b_x + b_w + ceil(log2 rows)``.

    Example:
        >>> exact_psum_bits(8, 8, 256)
        24
    """
    return int(input_bits) + int(weight_bits) + int(math.ceil(math.log2(max(rows, 2))))


def perfect_io_read(x: torch.Tensor, w: torch.Tensor, out_noise_rel: float = 0.0,
                    generator: torch.Generator | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
    """The tile read with a perfect periphery (aihwkit's ``PerfectRPUConfig`` I/O): no
    DAC, no ADC, no bound; optional additive Gaussian output noise of std ``out_noise_rel``
    times each vector's largest |output|. ``x`` (B, in) @ ``w`` (in, out) (+ ``bias``)
    -> (B, out). The read of on-chip training (:mod:`aimc.train.onchip_model`), whose
    subject is the update rule, not the converters.

    Example:
        >>> y = perfect_io_read(torch.ones(2, 3), torch.eye(3))
        >>> y.tolist()
        [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    if out_noise_rel == 0:
        return x @ w if bias is None else torch.addmm(bias, x, w)
    if generator is None:
        raise ValueError("perfect_io_read: output noise needs a torch.Generator")
    y = x @ w
    amax = y.abs().amax(1, keepdim=True)
    y = y + out_noise_rel * amax * torch.randn(y.shape, generator=generator, device=y.device)
    return y if bias is None else y + bias
