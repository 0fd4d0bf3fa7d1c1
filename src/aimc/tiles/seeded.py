"""Seeded ("lean") programming: a layer's programmed devices as a function of its targets
and one seed, regenerated block by block instead of stored.

A programmed chip is fully determined by the target conductances, the device model and
the random draws of programming (programming noise, drift exponents, ...). Stored, that
state takes two float32 numbers per device, four devices' worth per weight position (G+
and G-, conductance and drift parameter): 16 bytes per position, twice the read matrices
it is used to build. Here the draws of each block of whole output tiles (the blocks of
:class:`~aimc.tiles.matrices.MatrixBuilder`, a function of the layout alone) come from the
block's own seed ``block_seed(seed, first column)``, so the state of any block can be
drawn again, bit for bit, whenever the read matrices of another time are needed
(:func:`seeded_read_matrices`): only the targets, the seed and the read matrices of the
current time are kept. PCM devices (:class:`~aimc.physics.pcm.PCM`, ``PCMHermes``) are
drawn and turned into read matrices by one fused C++ pass per block
(:mod:`aimc.tiles.progfused`: counter-based normals keyed by the block seed, the same
formulas); every other device model's own :meth:`program` draws each block from a
``torch.Generator`` seeded with the block seed, so every device model works. Either way
the statistics are those of :func:`program_tiles`; only the draws differ, so a seed gives
another chip than ``program_tiles`` with a generator of that seed (the same chip every
time with this seed, whatever the number of threads).

Padding rows are never programmed (0 S, no drift), as in ``program_tiles``. Fault maps
are not supported (store the state, :func:`~aimc.tiles.crossbar.program_tiles`).

Example:
    >>> import torch
    >>> from aimc.chips import load
    >>> from aimc.tiles import encode, read_matrices
    >>> from aimc.tiles.crossbar import ProgrammedTiles
    >>> chip, w = load("pcm-hermes"), torch.randn(8, 300)
    >>> enc = encode(w, chip)
    >>> rm, _ = seeded_read_matrices(enc, chip, seed=7, t_s=3600.0)
    >>> full = read_matrices(ProgrammedTiles(enc.layout, seeded_state(enc, chip, 7), enc.scale), chip, 3600.0)
    >>> torch.equal(rm.w, full.w), torch.equal(rm.var, full.var)
    (True, True)
"""
from __future__ import annotations

from typing import Sequence

import torch

from aimc.chips.spec import ChipSpec
from aimc.physics.devices import DeviceState
from aimc.tiles import progfused
from aimc.tiles.crossbar import Encoded, ReadMatrices
from aimc.tiles.matrices import MatrixBuilder

__all__ = ["block_seed", "seeded_block", "seeded_state", "seeded_read_matrices", "seeded_read_matrices_at"]

_M64 = (1 << 64) - 1


def block_seed(seed: int, c0: int) -> int:
    """Seed (63 bits) of the block of columns starting at ``c0`` of a layer programmed with
    ``seed``: SplitMix64's finaliser of ``seed * golden + c0 + 1``.

    Example:
        >>> block_seed(0, 0) != block_seed(0, 256) != block_seed(1, 0)
        True
    """
    x = (int(seed) * 0x9E3779B97F4A7C15 + int(c0) + 1) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return (x ^ (x >> 31)) >> 1


def seeded_block(enc: Encoded, chip: ChipSpec, seed: int, c0: int, c1: int,
                 out: torch.Tensor | None = None) -> DeviceState:
    """The programmed state of columns ``[c0, c1)``, ``(S, 2, T, R, c1 - c0)``: the device
    model's :meth:`program` of their targets, drawn from the block's own seed (PCM: the
    fused kernel's counter-based draws, :mod:`aimc.tiles.progfused`, written into the
    scratch ``out`` when given; else a ``torch.Generator``); the padding rows at 0 S
    without drift."""
    if progfused.fused_usable(chip, enc.g_target_uS) is not None:
        return progfused.draw_block(enc.g_target_uS[..., c0:c1], enc.used, chip, block_seed(seed, c0), out)
    g_t = enc.g_target_uS[..., c0:c1].contiguous()
    gen = torch.Generator(device=g_t.device).manual_seed(block_seed(seed, c0))
    st = chip.device.program(g_t, gen)
    unused = ~enc.used.view(1, 1, *enc.used.shape, 1)
    if bool(unused.any()):
        st = DeviceState(st.g_uS.masked_fill(unused, 0.0), st.drift.masked_fill(unused, 0.0))
    return st


def _builder(enc: Encoded, chip: ChipSpec, t_s: float, w_dtype: torch.dtype | None = None,
             var_codes: bool = False) -> MatrixBuilder:
    g = enc.g_target_uS
    return MatrixBuilder(enc.layout, chip, t_s, tuple(g.shape), g.dtype, g.device, w_dtype, var_codes)


def seeded_state(enc: Encoded, chip: ChipSpec, seed: int) -> DeviceState:
    """The whole programmed state ``(S, 2, T, R, out)`` of a layer programmed with ``seed``
    (what :func:`seeded_read_matrices` draws block by block; for tests and for storing)."""
    g, d = torch.empty_like(enc.g_target_uS), torch.empty_like(enc.g_target_uS)
    for c0, c1 in _builder(enc, chip, 0.0).blocks():
        st = seeded_block(enc, chip, seed, c0, c1)
        g[..., c0:c1], d[..., c0:c1] = st.g_uS, st.drift
    return DeviceState(g, d)


def seeded_read_matrices(enc: Encoded, chip: ChipSpec, seed: int, t_s: float, signs: bool = False,
                         w_dtype: torch.dtype | None = None, var_codes: bool = False
                         ) -> tuple[ReadMatrices, torch.Tensor | None]:
    """The read matrices at ``t_s`` of the layer programmed with ``seed``, drawing each
    block's state, using it and dropping it (no whole-layer state is held); equal, bit
    for bit, to :func:`~aimc.tiles.matrices.read_matrices` of :func:`seeded_state`.

    With ``signs``, also the signs ``(in, out)`` (int8) of the weights as programmed (at
    t0, slices combined with their digital scales), which global drift compensation
    weighs its calibration reads with (:mod:`aimc.physics.drift`); else None.
    ``w_dtype``: of the effective weights (default: the targets'; a lean layer on a
    noisy chip asks for bfloat16, :mod:`aimc.nn.base`). ``var_codes``: the read-noise
    variances as one-byte codes (:func:`~aimc.tiles.fused.encode_var`; lean layers).
    """
    rms, sgn = seeded_read_matrices_at(enc, chip, seed, (t_s,), signs, w_dtype, var_codes)
    return rms[0], sgn


def seeded_read_matrices_at(enc: Encoded, chip: ChipSpec, seed: int, times: Sequence[float], signs: bool = False,
                            w_dtype: torch.dtype | None = None, var_codes: bool = False
                            ) -> tuple[list[ReadMatrices], torch.Tensor | None]:
    """:func:`seeded_read_matrices` at each of ``times`` from one draw of the devices (the
    reference of drift compensation at t = 0 and the matrices of now, in one pass)."""
    outs = [_builder(enc, chip, float(t), w_dtype, var_codes) for t in times]
    lay = enc.layout
    sgn = torch.empty(enc.g_target_uS.shape[2:], dtype=torch.int8, device=enc.g_target_uS.device) if signs else None
    blocks = outs[0].blocks()
    fused = bool(blocks) and progfused.fused_usable(chip, enc.g_target_uS) is not None
    scratch = torch.empty(2, enc.g_target_uS[..., : blocks[0][1]].numel()) if fused else None  # reused
    for c0, c1 in blocks:
        st = seeded_block(enc, chip, seed, c0, c1, scratch)
        for out in outs:
            out.add(c0, c1, st)
        if sgn is not None:
            w0 = ((st.g_uS[:, 0] - st.g_uS[:, 1]) * enc.scale[:, :, None, c0:c1]).sum(dim=0)  # (T, R, c)
            sgn[..., c0:c1] = torch.sign(w0)
    sgn = None if sgn is None else sgn.view(-1, lay.out_features)[: lay.in_features]
    return [out.finish(enc.scale) for out in outs], sgn
