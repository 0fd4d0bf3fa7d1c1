"""Sweeps: Monte Carlo over programmed chips and design-space exploration over chip-spec
fields, run by local processes or on a ``dask.distributed`` cluster, with tidy results."""
from __future__ import annotations

__all__: list[str] = []
