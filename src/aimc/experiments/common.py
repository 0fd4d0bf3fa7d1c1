"""Small helpers shared by the experiments: time labels, thread counts, mean ± std.

Example:
    >>> time_label(86400), mean_std([1.0, 3.0])
    ('1 day', (2.0, 1.4142135623730951))
"""
from __future__ import annotations

import statistics
from contextlib import contextmanager
from typing import Iterator

import torch

__all__ = ["time_label", "num_threads", "mean_std"]

_UNITS = ((31536000, "year"), (2592000, "month"), (86400, "day"), (3600, "h"), (60, "min"), (1, "s"))


def time_label(t_s: float) -> str:
    """Human label of a time in seconds: ``3600 -> "1 h"``, ``172800 -> "2 days"``.

    Example:
        >>> [time_label(t) for t in (1, 90, 3600, 86400, 2592000, 63072000)]
        ['1 s', '1.5 min', '1 h', '1 day', '1 month', '2 years']
    """
    for unit_s, name in _UNITS:
        if t_s >= unit_s or unit_s == 1:
            v = t_s / unit_s
            plural = "s" if name in ("day", "month", "year") and v != 1 else ""
            return f"{v:.3g} {name}{plural}"
    raise AssertionError("unreachable")


@contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (None: leave as set), restoring the
    old count after. Raises ValueError for anything but a positive integer or None."""
    if n is not None and (int(n) != n or n < 1):
        raise ValueError(f"threads must be a positive integer or None, got {n!r}")
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)
