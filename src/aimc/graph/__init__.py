"""The workload representation: what a model asks of the hardware, layer by layer.

:func:`extract_workload` turns a PyTorch model and an example input into a list of
:class:`LayerWork` (one matrix-vector workload per weight layer); :mod:`.builders` adds
the workloads of models given by their shape (a transformer block, an MLP). The cost
models price these lists; the compiler maps them onto a chip's tiles.

Example:
    >>> from aimc.graph import mvm_workload
    >>> mvm_workload(256, 128)[0].macs
    32768
"""
from __future__ import annotations

from aimc.graph.workload import LayerWork, extract_workload, mvm_workload

__all__ = ["LayerWork", "extract_workload", "mvm_workload"]
