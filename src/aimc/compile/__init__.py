"""The compiler: maps a captured model (:mod:`aimc.graph`) onto a chip's tiles.

It splits each weight matrix into array-sized blocks, packs the blocks onto the chip's
finite tiles, schedules the layers into a pipeline, decides per layer whether it runs
analog or digital (hybrid assignment) and writes the result as a versioned JSON
deployment plan that ``aimc run`` executes and ``aimc estimate`` prices.
"""
from __future__ import annotations

__all__: list[str] = []
