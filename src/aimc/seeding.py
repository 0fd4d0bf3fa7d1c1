"""Seeded blocks: torch's global random stream, reseeded for a block and restored after.

Most draws in aimc take a ``torch.Generator``; some cannot (a module's initialisation,
dropout inside a user's model, Hugging Face ``generate``). :func:`seeded` runs such a
block from a fixed seed inside :func:`torch.random.fork_rng`, so the block gives the
same draws whatever ran before it, and the caller's random state is left as it was.

Example:
    >>> import torch
    >>> with seeded(3):
    ...     a = torch.rand(2)
    >>> with seeded(3):
    ...     b = torch.rand(2)
    >>> torch.equal(a, b)
    True
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator

import torch

__all__ = ["seeded"]


@contextmanager
def seeded(seed: int | None, devices: Iterable[int] = ()) -> Iterator[None]:
    """Run the block with torch's global RNG seeded with ``seed``, restoring its state
    afterwards (the CPU's and that of the CUDA ``devices`` listed); ``None``: unseeded."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=list(devices)):
        torch.manual_seed(int(seed))
        yield
