"""``AnalogConvTranspose1d``/``2d``: transposed convolutions whose MVMs run on tiles.

A transposed convolution multiplies every input pixel's channel vector ``x_p`` (length
``C_in``) by one stationary matrix, ``W^T`` of shape ``(C_out * prod(kernel), C_in)``,
and scatter-adds the resulting ``C_out x kernel`` patch into the output at stride
``stride`` (col2im, ``torch.nn.functional.fold``; Dumoulin & Visin, "A guide to
convolution arithmetic for deep learning", arXiv:1603.07285, section 4). The MVM is the
analog read, one per input pixel; the overlap-add, cropping and bias are digital. On the
``ideal`` chip the layer equals torch's to float tolerance. The tiles' output columns are
``(C_out, *kernel)`` pairs, so ``out_gain`` is per column of that matrix. 3-d transposed
convolutions stay digital (``fold`` is 2-d).

Example:
    >>> import torch
    >>> up = torch.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
    >>> analog = AnalogConvTranspose2d.from_digital(up, "ideal")
    >>> x = torch.randn(1, 4, 5, 5)
    >>> analog(x).shape, torch.allclose(analog(x), up(x), atol=1e-5)
    (torch.Size([1, 2, 10, 10]), True)
"""
from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch
import torch.nn.functional as F
from torch import nn

from aimc.nn.base import AnalogLayerMixin
from aimc.nn.layers import _copy_params

__all__ = ["AnalogConvTranspose1d", "AnalogConvTranspose2d"]

if TYPE_CHECKING:  # mixed into nn.ConvTranspose1d/2d: typed as their common base (same bases at run time)
    from torch.nn.modules.conv import _ConvTransposeNd

    class _ConvTransposeMixin(AnalogLayerMixin, _ConvTransposeNd): ...
else:
    _ConvTransposeMixin = AnalogLayerMixin


class _AnalogConvTransposeNd(_ConvTransposeMixin):
    _nd = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None, *, chip=None):
        if groups != 1:
            raise ValueError(f"{type(self).__name__}: groups must be 1, got {groups}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
                         dilation, padding_mode, device, dtype)
        self._init_analog(chip)

    def analog_weight(self) -> torch.Tensor:
        """``(C_out * prod(kernel), C_in)``: the matrix each input pixel is multiplied by."""
        return self.weight.reshape(self.in_channels, -1).t()

    @classmethod
    def from_digital(cls, layer, chip):
        """A copy of ``layer`` (groups=1) on ``chip``'s tiles."""
        kw = {k: getattr(layer, k) for k in ("stride", "padding", "output_padding", "dilation", "padding_mode", "groups")}
        new = cls(layer.in_channels, layer.out_channels, layer.kernel_size, bias=layer.bias is not None,
                  device=layer.weight.device, dtype=layer.weight.dtype, chip=chip, **kw)
        _copy_params(new, layer)
        return new.train(layer.training)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        nd = self._nd
        if x.dim() != nd + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__}: input must be (batch, {self.in_channels}, "
                             f"{'H, W' if nd == 2 else 'length'}), got shape {tuple(x.shape)}")
        padding = cast(tuple[int, ...], self.padding)  # nn.ConvTranspose refuses string padding
        op = self._output_padding(x, output_size, list(self.stride), list(padding), list(self.kernel_size),
                                  nd, list(self.dilation))
        B, sp = x.shape[0], x.shape[2:]
        out_sp = [(n - 1) * s - 2 * p + d * (k - 1) + o + 1
                  for n, s, p, d, k, o in zip(sp, self.stride, padding, self.dilation, self.kernel_size, op)]
        rows = x.movedim(1, -1).reshape(-1, self.in_channels)  # (B*L, C_in)
        y = self.analog_mvm(rows)  # (B*L, C_out*prod(k)): the analog read
        cols = y.view(B, -1, y.shape[1]).transpose(1, 2)  # (B, C_out*prod(k), L)
        pad1 = (lambda t: (1, *t)) if nd == 1 else (lambda t: tuple(t))  # 1-d as a 2-d of height 1
        zero1 = (lambda t: (0, *t)) if nd == 1 else (lambda t: tuple(t))
        out = F.fold(cols, pad1(out_sp), pad1(self.kernel_size), dilation=pad1(self.dilation),
                     padding=zero1(padding), stride=pad1(self.stride))  # col2im overlap-add (digital)
        if nd == 1:
            out = out.squeeze(2)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, *([1] * nd))
        return out


class AnalogConvTranspose1d(_AnalogConvTransposeNd, nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` (groups=1) on analog tiles."""

    _nd = 1


class AnalogConvTranspose2d(_AnalogConvTransposeNd, nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` (groups=1) on analog tiles."""

    _nd = 2
