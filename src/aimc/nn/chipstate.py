"""How an analog layer holds its programmed chip (helpers of :mod:`aimc.nn.base`).

* :func:`redraw`: a lean layer's read matrices at given times, from one redraw of its
  devices (:mod:`aimc.tiles.seeded`), after checking that its weights are those it was
  programmed with;
* :func:`resolve_ref`: a lean layer's drift-compensation reference, deferred from
  programming to its first compensation;
* :func:`lean_w_dtype`: the dtype a lean layer and a Monte Carlo chip batch keep their
  effective weights in;
* :func:`one_chip_read`: one chip's read matrices in the layout of
  :mod:`aimc.tiles.multichip`, whose one-hot read the drift calibration uses.

Example:
    >>> from aimc.chips import load
    >>> lean_w_dtype(load("pcm-hermes")), lean_w_dtype(load("ideal"))
    (torch.bfloat16, None)
"""
from __future__ import annotations

from typing import Any

import torch

from aimc.chips import ChipSpec
from aimc.tiles import ReadMatrices, encode
from aimc.tiles.multichip import ChipsRead
from aimc.tiles.seeded import seeded_read_matrices_at

#: An :class:`aimc.nn.base.AnalogLayerMixin` (not imported: base imports this module).
Layer = Any

__all__ = ["redraw", "resolve_ref", "lean_w_dtype", "one_chip_read"]


def lean_w_dtype(chip: ChipSpec) -> torch.dtype | None:
    """bfloat16 effective weights for a lean layer (and the chips of an
    :class:`aimc.nn.montecarlo.ChipBatch`) whose devices' programming noise is at least ten
    times the rounding: 8 mantissa bits move a weight by at most 2^-9 of itself (0.2 %),
    where PCM's programming noise is 4-5 % of g at g_max (HERMES: 1.09 µS of 20.7) and more
    below, RRAM's lognormal spread 4 %
    (:meth:`~aimc.physics.devices.DeviceModel.prog_noise_rel_min`); None (the targets'
    float32) otherwise (``ideal``, equal to FP; SRAM's exact levels; ECRAM's 0.05 %).
    A read multiplies the DAC codes by these weights exactly (float32 products, or
    bfloat16 dot products with float32 sums where the codes are integers of at most 8
    bits, :mod:`aimc.cpp.tile_conv`), so a read differs from one of float32 weights only by
    the weights' rounding, at most 2^-9 of each product. (A layer programmed with
    ``store="full"`` keeps float32: its stored devices may be overwritten, e.g. put at
    their targets by an ablation, where the argument no longer holds.)"""
    return torch.bfloat16 if chip.device.prog_noise_rel_min() >= 10 * 2.0**-9 else None


def redraw(layer: Layer, times: tuple[float, ...]) -> tuple[tuple, list[ReadMatrices], torch.Tensor | None]:
    """A lean layer's read matrices at ``times`` from one redraw of its devices, the cache
    key of its current time and the programmed signs (``(in, out)``, int8).

    Raises:
        RuntimeError: the layer's weights changed (values or dtype) since it was programmed.
    """
    w = layer.analog_weight()
    if layer._weights_key() != layer._lean_weights:
        raise RuntimeError(f"{type(layer).__name__}{tuple(w.shape)}: its weights changed (values or dtype) since it "
                           "was programmed with store='lean' (the chip is redrawn from them); program it again")
    layer._cache = None  # the old matrices go before the new ones are built
    with torch.no_grad():
        rms, signs = seeded_read_matrices_at(encode(w, layer.chip), layer.chip, int(layer.prog_seed), times,
                                             signs=True, w_dtype=lean_w_dtype(layer.chip), var_codes=True)
    return (w.device, w.dtype, float(layer.t_s), True), rms, signs


def resolve_ref(layer: Layer) -> None:
    """The GDC reference of a lean layer, deferred from programming (nothing to do for
    others): the calibration read at t = 0 with a fresh read-noise stream of t = 0, as
    :meth:`~aimc.nn.base.AnalogLayerMixin.program_analog` makes it for a stored chip. Away
    from t = 0, the matrices of t = 0 and of now come from one redraw of the devices (and
    those of now are kept)."""
    if not getattr(layer, "_ref_pending", False):
        return
    t = float(layer.t_s)
    with torch.no_grad():
        if t == 0.0:
            rm0 = layer._read_matrices()
        else:
            key, rms, layer._signs = redraw(layer, (0.0, t))
            rm0, layer._cache = rms[0], (key, rms[1])
        gen = torch.Generator(device=layer.weight.device).manual_seed(layer._seed_at(0.0))
        layer.gdc_ref.copy_(layer._calibration_read(rm0, gen))
    layer._ref_pending = False


def _chip_dim(rm: ReadMatrices, dim: int) -> ReadMatrices:
    """``rm`` with a chip dimension of 1 at ``dim`` of ``w`` and ``var`` (views)."""
    return ReadMatrices(rm.layout, rm.w.unsqueeze(dim), None if rm.var is None else rm.var.unsqueeze(dim), rm.out_var,
                        rm.post, rm.code_max)


def one_chip_read(rm: ReadMatrices) -> ChipsRead:
    """One chip's read matrices ``rm`` as the :class:`~aimc.tiles.multichip.ChipsRead` of
    one chip (float32 weights: bfloat16 ones are read as their float32 values; variance
    codes decoded), for the
    multichip one-hot read: it gathers rows of ``w`` instead of multiplying unit vectors,
    the same read as :func:`~aimc.tiles.crossbar.mvm` of them."""
    f32 = ReadMatrices(rm.layout, rm.w.float(), rm.dense_var(), rm.out_var, rm.post, rm.code_max)
    return ChipsRead(1, _chip_dim(f32, 1), _chip_dim(f32, 0))
