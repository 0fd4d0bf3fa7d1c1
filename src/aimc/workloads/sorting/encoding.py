"""Order-preserving bit encodings of keys and their digits (MSB first).

A sort-in-memory array compares nothing: it finds the smallest key by reading digits from
the most significant one down, so a key must be stored as an unsigned bit string whose
lexicographic order is the numeric order:

* unsigned integers: their ``bits``-bit binary;
* signed integers: offset binary, ``v + 2**(bits-1)`` (two's complement with the sign bit
  flipped);
* floats (IEEE 754 binary32 or binary64): the sign bit flipped for non-negative values, all
  bits inverted for negative ones (so that larger magnitudes of negatives sort first);
  ``-0.0`` is stored as ``+0.0`` (the two are equal, as in ``sorted``), NaN is refused.

Example:
    >>> k = encode_keys([3, -1, 0], bits=4)
    >>> k.keys.tolist(), k.signed
    ([11, 7, 8], True)
    >>> int(encode_keys([-1.5, 2.0]).keys[0] < encode_keys([-1.5, 2.0]).keys[1])
    1
    >>> to_digits(np.array([0b1101], dtype=np.uint64), 4, 2).tolist()
    [[3, 1]]
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["Keys", "encode_keys", "to_digits", "n_digits"]


@dataclass(frozen=True)
class Keys:
    """Encoded keys: ``keys`` (uint64, order-preserving), their width ``bits``, and how the
    values were read (``kind``: ``uint``, ``int`` or ``float``; ``signed``)."""

    keys: np.ndarray
    bits: int
    kind: str
    signed: bool


def _as_array(values: Sequence[Any] | np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64) if any(isinstance(v, float) for v in arr.ravel()) else arr.astype(np.int64)
        except (TypeError, ValueError, OverflowError) as e:
            raise ValueError(f"keys must be numbers (integers or floats): {e}") from None
    if arr.ndim != 1:
        raise ValueError(f"keys must be a 1-D sequence of numbers, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("no keys to sort: the data is empty")
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"keys must be integers or floats, got dtype {arr.dtype}")
    return arr


def encode_keys(values: Sequence[Any] | np.ndarray | torch.Tensor, bits: int | None = None,
                signed: bool | None = None) -> Keys:
    """Encode numbers as order-preserving unsigned ``bits``-bit keys (module doc).

    Args:
        values: integers or floats (a list, NumPy array or tensor), at least one.
        bits: key width. Integers: default the smallest width that holds them (1..64);
            floats: 32 (binary32, values rounded to it) or 64 (default, binary64).
        signed: integers only: offset-binary encoding; default when any value is negative.

    Raises:
        ValueError: empty data, NaN keys (naming the first index), non-numeric keys, a width
            that does not hold the values, or a float width other than 32/64.
    """
    arr = _as_array(values)
    if np.issubdtype(arr.dtype, np.floating):
        nan = np.flatnonzero(np.isnan(arr))
        if nan.size:
            raise ValueError(f"NaN keys cannot be sorted (first at index {int(nan[0])}); drop or replace them")
        bits = 64 if bits is None else bits
        if bits not in (32, 64):
            raise ValueError(f"float keys are encoded as IEEE 754 binary32 or binary64: bits must be 32 or 64, got {bits}")
        f = arr.astype(np.float32 if bits == 32 else np.float64)
        f = np.where(f == 0, np.zeros_like(f), f)  # -0.0 -> +0.0
        u = f.view(np.uint32 if bits == 32 else np.uint64).astype(np.uint64)
        top = np.uint64(1) << np.uint64(bits - 1)
        full = np.uint64((1 << bits) - 1)
        keys = np.where(u & top, ~u & full, u | top)
        return Keys(keys.astype(np.uint64), bits, "float", True)
    lo, hi = int(arr.min()), int(arr.max())
    signed = lo < 0 if signed is None else signed
    if bits is None:
        need = max(hi.bit_length(), (-lo - 1).bit_length() if lo < 0 else 0) + (1 if signed else 0)
        bits = max(1, need)
    if not 1 <= bits <= 64:
        raise ValueError(f"bits must be between 1 and 64, got {bits}")
    lim_lo, lim_hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if lo < lim_lo or hi > lim_hi:
        raise ValueError(f"keys in [{lo}, {hi}] do not fit {bits}-bit {'signed' if signed else 'unsigned'} "
                         f"keys [{lim_lo}, {lim_hi}]; raise bits")
    if signed:
        keys = (arr.astype(np.int64).view(np.uint64) + np.uint64(1 << (bits - 1))) & np.uint64((1 << bits) - 1) \
            if bits < 64 else arr.astype(np.int64).view(np.uint64) ^ np.uint64(1 << 63)
    else:
        keys = arr.astype(np.uint64)
    return Keys(np.asarray(keys, dtype=np.uint64), bits, "int" if signed else "uint", signed)


def n_digits(bits: int, bits_per_cell: int) -> int:
    """Digits per key: ``ceil(bits / bits_per_cell)``."""
    return math.ceil(bits / bits_per_cell)


def to_digits(keys: np.ndarray, bits: int, bits_per_cell: int = 1) -> torch.Tensor:
    """Split ``bits``-bit keys into base-``2**bits_per_cell`` digits, MSB first: ``(n, D)``
    uint8 (a width that is not a multiple of ``bits_per_cell`` is padded with leading 0 bits)."""
    if bits_per_cell not in (1, 2, 3, 4):
        raise ValueError(f"bits_per_cell must be 1..4, got {bits_per_cell}")
    d = n_digits(bits, bits_per_cell)
    k = keys.astype(np.uint64)
    mask = np.uint64((1 << bits_per_cell) - 1)
    dig = np.empty((k.size, d), dtype=np.uint8)
    for j in range(d):  # one vector op per digit
        dig[:, j] = (k >> np.uint64((d - 1 - j) * bits_per_cell)) & mask
    return torch.from_numpy(dig)
