"""The public conversion table ``CONVERSIONS`` (digital layer type -> analog layer type)
and the lookup ``convert`` uses, :func:`conversion_target`.

Example:
    >>> import torch
    >>> conversion_target(torch.nn.MultiheadAttention(8, 2).out_proj).__name__  # a Linear subclass
    'AnalogLinear'
    >>> conversion_target(torch.nn.Embedding(4, 4)) is None
    True
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from aimc.nn.attention import AnalogMultiheadAttention
from aimc.nn.base import AnalogLayerMixin
from aimc.nn.layers import AnalogConv1d, AnalogConv2d, AnalogConv3d, AnalogLinear
from aimc.nn.moe import AnalogExperts, is_fused_experts
from aimc.nn.recurrent import AnalogGRU, AnalogLSTM, AnalogRNN
from aimc.nn.transposed import AnalogConvTranspose1d, AnalogConvTranspose2d

__all__ = ["CONVERSIONS", "CONVERSION_RULES", "conversion_target"]

#: The public conversion table: digital layer type -> analog layer type (``from_digital``).
#: Subclasses convert too: a module takes the entry of the nearest class in its MRO, so a
#: more specific entry (say ``MyLinear: MyAnalogLinear``) wins over ``nn.Linear``.
CONVERSIONS: dict[type[nn.Module], type[nn.Module]] = {
    nn.Linear: AnalogLinear,
    nn.Conv1d: AnalogConv1d,
    nn.Conv2d: AnalogConv2d,
    nn.Conv3d: AnalogConv3d,
    nn.ConvTranspose1d: AnalogConvTranspose1d,
    nn.ConvTranspose2d: AnalogConvTranspose2d,
    nn.MultiheadAttention: AnalogMultiheadAttention,
    nn.LSTM: AnalogLSTM,
    nn.GRU: AnalogGRU,
    nn.RNN: AnalogRNN,
}

#: Conversions by structure, tried after :data:`CONVERSIONS` for modules whose class has no
#: entry: ``(predicate(module) -> bool, analog class)``. Hugging Face's fused MoE experts
#: (``MixtralExperts``, ``Qwen2MoeExperts``, ...) are recognised by their 3-D
#: ``gate_up_proj``/``down_proj`` parameters, without importing transformers.
CONVERSION_RULES: list[tuple[Callable[[nn.Module], bool], type[nn.Module]]] = [
    (is_fused_experts, AnalogExperts),
]


def conversion_target(module: nn.Module) -> type[nn.Module] | None:
    """The analog class ``convert`` maps ``module`` to (nearest class in its MRO), or
    ``None`` (already analog, or no entry in :data:`CONVERSIONS` or :data:`CONVERSION_RULES`)."""
    if isinstance(module, AnalogLayerMixin) or type(module) in CONVERSIONS.values():
        return None
    for cls in type(module).__mro__:
        if cls in CONVERSIONS:
            return CONVERSIONS[cls]
    for rule, target in CONVERSION_RULES:
        if type(module) is not target and rule(module):
            return target
    return None
