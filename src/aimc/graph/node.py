"""The op graph's building blocks: :class:`Node`, the canonical op sets, :class:`CaptureError`,
and :class:`GraphView` (what :mod:`.runtime` and :mod:`.views` read of a graph).

The canonical ops are listed in :mod:`aimc.graph.ir`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from aimc.config import ConfigError

__all__ = ["CaptureError", "Node", "GraphView", "MVM_OPS", "STATIONARY_OPS", "LAYOUT_OPS", "COMPUTE_OPS",
           "ALL_OPS"]

#: Ops whose matrix is a trained weight (programmable once into the array).
STATIONARY_OPS = frozenset({"linear", "conv"})
#: Matrix-vector ops of the workload: the stationary ones and activation x activation products.
MVM_OPS = STATIONARY_OPS | {"matmul"}
#: Ops that only move data.
LAYOUT_OPS = frozenset({"reshape", "transpose", "select", "slice", "concat", "split", "expand"})
#: Digital compute ops (what the chip's host processor does).
COMPUTE_OPS = frozenset({"relu", "gelu", "sigmoid", "tanh", "silu", "exp", "sqrt", "erf", "neg", "abs",
                         "reciprocal", "add", "sub", "mul", "div", "pow", "where", "softmax", "log_softmax",
                         "layernorm", "batchnorm", "maxpool", "avgpool", "mean", "embedding"})
ALL_OPS = MVM_OPS | LAYOUT_OPS | COMPUTE_OPS


class CaptureError(ConfigError):
    """A model could not be captured: the message names the file, node and op."""


@dataclass(frozen=True)
class Node:
    """One op of a :class:`Graph`.

    Attributes:
        name: unique node name (an MVM node's module path, e.g. ``"fc1"``).
        op: canonical op name (see the module docstring).
        inputs: names of the values (or constant tensors in ``Graph.weights``) it reads.
        outputs: names of the values it writes.
        attrs: op attributes (plain ints, floats, tuples, strings).
        weight: name of its weight tensor in ``Graph.weights`` (``None`` if it has none).
        bias: name of its bias tensor (``None`` if it has none).
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    weight: str | None = None
    bias: str | None = None




class GraphView(Protocol):
    """The parts of a :class:`~aimc.graph.ir.Graph` that running and viewing it need."""

    @property
    def nodes(self) -> tuple[Node, ...]: ...

    @property
    def values(self) -> dict[str, tuple[int, ...]]: ...

    @property
    def weights(self) -> dict[str, torch.Tensor]: ...

    @property
    def inputs(self) -> tuple[str, ...]: ...

    @property
    def outputs(self) -> tuple[str, ...]: ...

    def mvm_nodes(self) -> list[Node]: ...

    def to_module(self) -> torch.nn.Module: ...
