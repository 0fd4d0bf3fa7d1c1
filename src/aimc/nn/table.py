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

from torch import nn

from aimc.nn.attention import AnalogMultiheadAttention
from aimc.nn.base import AnalogLayerMixin
from aimc.nn.layers import AnalogConv1d, AnalogConv2d, AnalogConv3d, AnalogLinear
from aimc.nn.recurrent import AnalogGRU, AnalogLSTM, AnalogRNN
from aimc.nn.transposed import AnalogConvTranspose1d, AnalogConvTranspose2d

__all__ = ["CONVERSIONS", "conversion_target"]

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


def conversion_target(module: nn.Module) -> type[nn.Module] | None:
    """The analog class ``convert`` maps ``module`` to (nearest class in its MRO), or
    ``None`` (already analog, or no entry in :data:`CONVERSIONS`)."""
    if isinstance(module, AnalogLayerMixin) or type(module) in CONVERSIONS.values():
        return None
    for cls in type(module).__mro__:
        if cls in CONVERSIONS:
            return CONVERSIONS[cls]
    return None
