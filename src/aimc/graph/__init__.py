"""The workload representation: what a model asks of the hardware.

* :func:`capture` turns a PyTorch model (``torch.export``, falling back to ``torch.fx``) or
  an ONNX file into a :class:`Graph`: ops with shapes, weights and which ops are MVMs
  (:mod:`aimc.graph.ir` lists the canonical ops). :meth:`Graph.workload` lists its
  matrix-vector work, :meth:`Graph.host_ops` its digital work, :meth:`Graph.to_module`
  runs it in PyTorch.
* :func:`extract_workload` turns a PyTorch model and an example input into a list of
  :class:`LayerWork` (one matrix-vector workload per weight layer) by running it under
  hooks; :mod:`.builders` adds the workloads of models given by their shape (a transformer
  block, an MLP). The cost models price these lists; the compiler maps them onto tiles.

Example:
    >>> from aimc.graph import mvm_workload
    >>> mvm_workload(256, 128)[0].macs
    32768
"""
from __future__ import annotations

from aimc.graph.capture import capture
from aimc.graph.ir import CaptureError, Graph, Node
from aimc.graph.workload import LayerWork, extract_workload, mvm_workload

__all__ = ["CaptureError", "Graph", "LayerWork", "Node", "capture", "extract_workload", "mvm_workload"]
