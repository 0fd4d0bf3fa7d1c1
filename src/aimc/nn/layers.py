"""Drop-in analog layers: ``AnalogLinear``, ``AnalogConv1d``, ``AnalogConv2d``.

Each keeps its torch constructor and adds one keyword, ``chip=`` (a preset name, a YAML
path or a :class:`aimc.chips.ChipSpec`), plus ``from_digital(layer, chip)``. A convolution
is one MVM per output pixel through the same tiles (each patch is an input vector, with its
own DAC scaling), read by :func:`aimc.tiles.conv.conv_mvm` without building an im2col
matrix; with gradients (chip in the loop) or a row-wise training read it runs through
im2col rows, the same read. Bias, drift compensation and everything outside the MVM are
digital.

Example:
    >>> import torch
    >>> from aimc.nn import AnalogLinear
    >>> layer = AnalogLinear(8, 4, chip="ideal")
    >>> layer(torch.randn(2, 8)).shape
    torch.Size([2, 4])
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from aimc.nn.base import AnalogLayerMixin
from aimc.tiles.conv import ConvGeometry, conv_out_shape, im2col

__all__ = ["AnalogLinear", "AnalogConv1d", "AnalogConv2d", "AnalogConv3d"]

if TYPE_CHECKING:  # mixed into nn.Conv1d/2d/3d: typed as their common base (same bases at run time)
    from torch.nn.modules.conv import _ConvNd

    class _ConvMixin(AnalogLayerMixin, _ConvNd): ...
else:
    _ConvMixin = AnalogLayerMixin


def _copy_params(dst: AnalogLayerMixin, src: nn.Linear | _ConvNd) -> None:
    """Copy weight and bias, and whether each is trained (a frozen layer stays frozen)."""
    with torch.no_grad():
        dst.weight.copy_(src.weight)
        dst.weight.requires_grad_(src.weight.requires_grad)
        if src.bias is not None:
            assert dst.bias is not None  # built with a bias when src has one
            dst.bias.copy_(src.bias)
            dst.bias.requires_grad_(src.bias.requires_grad)


# torch's stubs type nn.Linear.bias as Parameter, but it is None for bias=False (the mixin's
# ``Tensor | None`` is right)
class AnalogLinear(AnalogLayerMixin, nn.Linear):  # type: ignore[misc]
    """``nn.Linear`` whose matrix-vector products run on analog crossbar tiles."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None, *, chip=None):
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self._init_analog(chip)

    @classmethod
    def from_digital(cls, layer: nn.Linear, chip) -> "AnalogLinear":
        new = cls(layer.in_features, layer.out_features, layer.bias is not None,
                  device=layer.weight.device, dtype=layer.weight.dtype, chip=chip)
        _copy_params(new, layer)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"AnalogLinear({self.in_features}, {self.out_features}): input's last "
                             f"dimension must be {self.in_features}, got shape {tuple(x.shape)}")
        rows = x.reshape(-1, self.in_features)
        tf = self.train_forward
        if self.training and tf is not None and hasattr(tf, "linear"):  # a whole training read, bias included
            return tf.linear(self, rows).view(*x.shape[:-1], self.out_features)
        y = self.analog_mvm(rows, self.bias)
        return y.view(*x.shape[:-1], self.out_features)


class _AnalogConvNd(_ConvMixin):
    """Convolution through the tiles, one MVM per output pixel (groups=1; any stride,
    padding, padding mode, dilation); the read is :func:`aimc.tiles.conv.conv_mvm`."""

    _nd = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None, *, chip=None):
        if groups != 1:
            raise ValueError(f"{type(self).__name__}: groups must be 1, got {groups}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype)
        self._init_analog(chip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tf = self.train_forward
        if self.training and tf is not None and hasattr(tf, "conv"):  # a training read without im2col
            if x.dim() != self._nd + 2 or x.shape[1] != self.in_channels:
                raise ValueError(f"{type(self).__name__}: input must be (batch, {self.in_channels}, ...), "
                                 f"got shape {tuple(x.shape)}")
            return tf.conv(self, x)  # gains and bias included
        return self._conv_analog(x)

    def _conv_analog(self, x: torch.Tensor) -> torch.Tensor:
        nd = self._nd
        if x.dim() != nd + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__}: input must be (batch, {self.in_channels}, "
                             f"{'spatial dims' if nd > 1 else 'length'}), got shape {tuple(x.shape)}")
        geo = self._geometry()
        if (self.training and self.train_forward is not None) or (torch.is_grad_enabled() and x.requires_grad):
            # a row-wise training read, or the chip read with a straight-through gradient: im2col rows
            y = self.analog_mvm(im2col(x, geo))  # (B*L, out)
            if self.bias is not None:
                y = y + self.bias
            return y.view(x.shape[0], *conv_out_shape(x, geo), self.out_channels).movedim(-1, 1)
        return self.analog_conv(x, geo)  # the tile read without im2col; gains and bias in place

    def _geometry(self) -> ConvGeometry:
        """This layer's :class:`ConvGeometry` (rebuilt only when an attribute changed)."""
        key = (self.kernel_size, self.stride, self.dilation, tuple(self._reversed_padding_repeated_twice),
               self.padding_mode)
        cached = getattr(self, "_geo_cache", None)
        if cached is None or cached[0] != key:
            cached = self._geo_cache = (key, ConvGeometry.of(self))
        return cached[1]

    @classmethod
    def from_digital(cls, layer, chip):
        if layer.groups != 1:
            raise ValueError(f"{type(layer).__name__} with groups={layer.groups}: only groups=1 maps onto tiles")
        new = cls(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                  padding=layer.padding, dilation=layer.dilation, bias=layer.bias is not None,
                  padding_mode=layer.padding_mode, device=layer.weight.device, dtype=layer.weight.dtype, chip=chip)
        _copy_params(new, layer)
        return new


class AnalogConv1d(_AnalogConvNd, nn.Conv1d):
    """``nn.Conv1d`` (groups=1) on analog tiles."""

    _nd = 1


class AnalogConv2d(_AnalogConvNd, nn.Conv2d):
    """``nn.Conv2d`` (groups=1) on analog tiles."""

    _nd = 2


class AnalogConv3d(_AnalogConvNd, nn.Conv3d):
    """``nn.Conv3d`` (groups=1) on analog tiles: im2col over depth, height and width.
    A training read (hardware-aware training) goes through the same im2col rows."""

    _nd = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_analog(x)  # train_forward.conv reads 1-d/2-d only; rows work for any nd
