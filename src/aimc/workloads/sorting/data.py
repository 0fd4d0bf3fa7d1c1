"""Key data sets for the sorter: five generated distributions, and number files.

Distributions of ``n`` unsigned ``bits``-bit integers (seeded):

* ``uniform``: uniform over ``[0, 2**bits)``;
* ``normal``: a Gaussian centred in the range with standard deviation ``2**bits / 16``, clipped;
* ``clustered``: 8 clusters at uniform centres, each a Gaussian of ``2**bits / 1024``;
* ``nearly-sorted``: ascending uniform keys with 5 % of them swapped at random;
* ``duplicates``: 16 distinct uniform values drawn with replacement (many duplicates).

Files: numbers separated by whitespace or commas; integers stay integers, anything else
is read as a float (``nan`` is read, and refused by the sorter with its index).

Example:
    >>> generate("duplicates", 8, 8, seed=0).tolist()
    [166, 44, 44, 248, 78, 155, 166, 217]
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["DISTRIBUTIONS", "generate", "read_numbers", "write_numbers"]

DISTRIBUTIONS = ("uniform", "normal", "clustered", "nearly-sorted", "duplicates")


def generate(dist: str, n: int, bits: int = 32, seed: int = 0, value_bits: int | None = None) -> np.ndarray:
    """``n`` keys of ``bits`` bits from a distribution of :data:`DISTRIBUTIONS` (uint64).

    ``value_bits`` (default ``bits``) narrows the range to ``[0, 2**value_bits)``: small
    values in wide words, whose leading zero bits every key shares.
    """
    if dist not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {dist!r}; choose one of {', '.join(DISTRIBUTIONS)}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 1 <= bits <= 63:
        raise ValueError(f"bits must be between 1 and 63 for generated keys, got {bits}")
    if value_bits is not None:
        if not 1 <= value_bits <= bits:
            raise ValueError(f"value_bits must be between 1 and bits ({bits}), got {value_bits}")
        bits = value_bits
    rng = np.random.default_rng(seed)
    top = float(2 ** bits)
    if dist == "uniform":
        x = rng.integers(0, 2 ** bits, n, dtype=np.uint64)
    elif dist == "normal":
        x = np.clip(rng.normal(top / 2, top / 16, n), 0, top - 1)
    elif dist == "clustered":
        centres = rng.uniform(0, top, 8)
        x = np.clip(centres[rng.integers(0, 8, n)] + rng.normal(0, top / 1024, n), 0, top - 1)
    elif dist == "nearly-sorted":
        x = np.sort(rng.integers(0, 2 ** bits, n, dtype=np.uint64))
        i = rng.integers(0, n, (max(1, n // 20), 2))
        x[i[:, 0]], x[i[:, 1]] = x[i[:, 1]], x[i[:, 0]]
    else:
        x = rng.integers(0, 2 ** bits, 16, dtype=np.uint64)[rng.integers(0, 16, n)]
    return np.asarray(x).astype(np.uint64)


def read_numbers(path: str | Path) -> np.ndarray:
    """Numbers of a text file (module doc): int64 if every token is an integer, else float64.

    Raises:
        ValueError: a token that is not a number (naming the file and the token), or no numbers.
    """
    text = Path(path).read_text()
    tokens = [t for t in re.split(r"[\s,]+", text) if t]
    if not tokens:
        raise ValueError(f"{path}: no numbers in the file (the data is empty)")
    try:
        return np.array([int(t) for t in tokens], dtype=np.int64)
    except ValueError:
        pass
    except OverflowError:
        raise ValueError(f"{path}: an integer does not fit 64 bits") from None
    out = np.empty(len(tokens))
    for i, t in enumerate(tokens):
        try:
            out[i] = float(t)
        except ValueError:
            raise ValueError(f"{path}: token {i + 1} ({t!r}) is not a number") from None
    return out


def write_numbers(path: Path, values: np.ndarray) -> None:
    """Write one number per line, atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(repr(float(v)) if isinstance(v, (float, np.floating)) else str(int(v))
                              for v in values) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
