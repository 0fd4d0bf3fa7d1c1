"""Peripheral converters: input DAC and output ADC (pure functions).

Both are signed, symmetric, uniform converters with ``bits`` of resolution (sign +
magnitude): the largest code is ``L = 2^(bits-1) - 1``, so 8 bits give the 255 codes
-127..127 used by IBM HERMES's 8-bit PWM inputs and CCO-based ADCs (Le Gallo et al.,
Nat. Electron. 2023) and by aihwkit's ``inp_res``/``out_res = 1/254``.

* DAC: ``code = round(clamp(x / x_fs, -1, 1) * L)``;
* ADC: ``code = round(clamp(y / y_fs, -1, 1) * L)``, saturating at ``±L``.

Example:
    >>> import torch
    >>> max_code(8)
    127
    >>> dac_codes(torch.tensor([-2.0, 0.5004, 1.0]), 8).tolist()
    [-127.0, 64.0, 127.0]
"""
from __future__ import annotations

import torch

__all__ = ["max_code", "dac_codes", "adc_codes_"]


def max_code(bits: int | None) -> int | None:
    """Largest code ``2^(bits-1) - 1`` of a signed converter (None: exact, no converter)."""
    return None if bits is None else 2 ** (bits - 1) - 1


def dac_codes(x: torch.Tensor, bits: int | None) -> torch.Tensor:
    """Inputs in units of the DAC full scale -> codes (exact values when ``bits`` is None)."""
    x = x.clamp(-1.0, 1.0)
    levels = max_code(bits)
    return x if levels is None else torch.round_(x.mul_(levels))


def adc_codes_(y: torch.Tensor, code_max: int) -> torch.Tensor:
    """In place: values already in LSB units -> saturated, rounded ADC codes."""
    return y.clamp_(-code_max, code_max).round_()
