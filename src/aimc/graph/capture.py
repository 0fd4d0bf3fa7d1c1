"""One entry point: :func:`capture` a PyTorch model or an ONNX file into a :class:`Graph`."""
from __future__ import annotations

import os
from typing import Any

from torch import nn

from aimc.graph.ir import CaptureError, Graph

__all__ = ["capture"]


def capture(model: nn.Module | str | os.PathLike, example_input: Any = None) -> Graph:
    """Capture a model into the op graph (:class:`~aimc.graph.ir.Graph`).

    An ``nn.Module`` is traced with ``torch.export.export`` at batch 1 (the first sample of
    ``example_input``, batch first), falling back to ``torch.fx.symbolic_trace`` when
    export fails (a warning on the ``aimc.graph.from_torch`` logger says why). A path ending
    in ``.onnx`` is read with the ``onnx`` package (checked, shapes inferred); its input
    shapes come from the file (a symbolic batch dimension is set to 1), or from
    ``example_input`` when given.

    Args:
        model: the model, or the path of an ONNX file.
        example_input: a tensor (or tuple of tensors) with the batch first; required for
            an ``nn.Module``.

    Returns:
        The :class:`Graph`; the same model from PyTorch and from its ONNX export gives
        graphs with the same ``signature()`` and ``fingerprint()``.

    Raises:
        CaptureError: (a ``ValueError``) an unreadable or malformed file, an unsupported
            op (named with its node) or a missing example input.

    Example:
        >>> import torch
        >>> g = capture(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU()), torch.randn(2, 1, 8, 8))
        >>> [(w.name, w.in_features, w.out_features, w.n_mvm) for w in g.workload()]
        [('0', 9, 4, 36)]
    """
    if isinstance(model, nn.Module):
        if example_input is None:
            raise CaptureError("capture: an nn.Module needs an example_input (a tensor, batch first)")
        from aimc.graph.from_torch import capture_torch
        return capture_torch(model, example_input)
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not path.lower().endswith(".onnx"):
            raise CaptureError(f"capture: {path}: not an ONNX file (expected a .onnx path or an nn.Module)")
        from aimc.graph.from_onnx import capture_onnx
        return capture_onnx(path, example_input)
    raise CaptureError(f"capture: expected an nn.Module or a .onnx path, got {type(model).__name__}")
