"""The fused C++ pass of PCM devices: programming a block of devices and turning a block's
programmed state into its columns of the read matrices, one pass each (:mod:`aimc.cpp.program`).

Used, when the compiled kernels are available (:func:`aimc.cpp.load`), for the device
models :class:`~aimc.physics.pcm.PCM` and :class:`~aimc.physics.pcm.PCMHermes` whose
formulas are not overridden by a subclass, on float32 CPU tensors, with IR drop ``none``
or ``first_order``; every other case takes the generic PyTorch path (the device model's
own methods). The formulas are the device model's (module doc of :mod:`aimc.physics.pcm`)
and :mod:`aimc.physics.circuit`'s first-order IR drop; the kernel reproduces the PyTorch
path's float operations in order, except log/exp (float32 polynomials within ~1 ulp).

* :func:`draw_block`: the programmed state ``(S, 2, T, R, c)`` of a block's targets,
  the standard normals from the counter-based generator of :mod:`aimc.cpp.rng` keyed by
  the block's seed (device ``i`` of the block, in flat order: programming noise
  ``z[2i]``, drift exponent ``z[2i + 1]``): a pure function of (targets, seed), the same
  with any number of threads (a chip of the same statistics as, but other draws than,
  ``torch.Generator`` with that seed).
* :func:`read_block`: drift to ``t_s``, first-order IR drop per physical tile, effective
  weights and read-noise variances of a block, written into the matrices of
  :class:`~aimc.tiles.matrices.MatrixBuilder`.

Example:
    >>> import torch
    >>> from aimc.chips import load
    >>> from aimc.tiles import encode
    >>> chip = load("pcm-hermes")
    >>> enc = encode(torch.randn(4, 8), chip)
    >>> st = draw_block(enc.g_target_uS, enc.used, chip, 7) if fused_usable(chip, enc.g_target_uS) else None
    >>> st is None or torch.equal(st.g_uS, draw_block(enc.g_target_uS, enc.used, chip, 7).g_uS)
    True
"""
from __future__ import annotations

import math

import torch

from aimc import cpp
from aimc.chips.spec import ChipSpec
from aimc.physics.devices import DeviceModel, DeviceState
from aimc.physics.drift import check_time_s
from aimc.physics.pcm import PCM, PCMHermes
from aimc.tiles.fused import _signed64
from aimc.tiles.irdrop import ir_drop_active

__all__ = ["kernel_params", "fused_usable", "draw_block", "read_block", "reads_noisy"]

_N_PARAMS = 52
_PCM_METHODS = ("program", "sample_drift_exponent", "prog_noise_std_uS", "drift_mean_std", "read_q",
                "read_noise_std_uS", "at_time")


def _poly(coeffs: tuple[float, ...]) -> list[float]:
    if not 1 <= len(coeffs) <= 6:
        raise ValueError(f"fused PCM kernel: 1 to 6 polynomial coefficients, got {len(coeffs)}")
    return [float(len(coeffs)), *coeffs, *([0.0] * (6 - len(coeffs)))]


def _piece(brk: float, log_ab: tuple[float, float], clip: tuple[float, float], poly: tuple[float, ...]) -> list[float]:
    return [brk, log_ab[0], log_ab[1], clip[0], clip[1], *_poly(poly)]


def kernel_params(dev: DeviceModel) -> list[float] | None:
    """The kernel's parameters of ``dev`` (52 floats, the layout of :mod:`aimc.cpp.program`),
    or None when the fused kernel does not implement its formulas (another model, or a
    subclass of PCM that overrides one of them).

    Example:
        >>> from aimc.physics.devices import Ideal
        >>> len(kernel_params(PCMHermes())), kernel_params(Ideal())
        (52, None)
    """
    base = type(dev).__mro__[1] if type(dev) not in (PCM, PCMHermes) else type(dev)
    if base not in (PCM, PCMHermes) or any(getattr(type(dev), m) is not getattr(base, m) for m in _PCM_METHODS):
        return None
    assert isinstance(dev, PCM)
    p = [dev.g_max_uS, *_poly(dev.prog_coeffs_uS), dev.g_max_uS / dev.prog_ref_g_max_uS, dev.prog_noise_scale]
    if isinstance(dev, PCMHermes):
        p += _piece(dev.drift_mean_break, dev.drift_mean, dev.drift_mean_clip, dev.drift_mean_poly)
        p += _piece(dev.drift_std_break, dev.drift_std, dev.drift_std_clip, dev.drift_std_poly)
        p += [dev.drift_scale, 1.0, 0.0, 0.0, 0.0, 0.0]
        p += _piece(dev.read_q_break, dev.read_q_log, dev.read_q_clip, dev.read_q_poly)
    else:  # clamp(a ln x + b) everywhere: a break at +inf
        p += _piece(math.inf, dev.drift_mean, dev.drift_mean_clip, (0.0,))
        p += _piece(math.inf, dev.drift_std, dev.drift_std_clip, (0.0,))
        p += [dev.drift_scale, 0.0, dev.read_q_s, dev.read_q_exp, dev.read_q_min_ratio, dev.read_q_max]
        p += [0.0] * 12
    assert len(p) == _N_PARAMS
    return [float(v) for v in p]


def fused_usable(chip: ChipSpec, like: torch.Tensor):
    """The compiled module when the fused pass applies to ``chip`` and tensors like
    ``like`` (module doc), else None."""
    if like.dtype != torch.float32 or like.device.type != "cpu" or kernel_params(chip.device) is None:
        return None
    if ir_drop_active(chip) and chip.ir_drop.mode != "first_order":
        return None
    return cpp.load()


def reads_noisy(chip: ChipSpec, t_s: float) -> bool:
    """True when reads at ``t_s`` have read noise (``PCM.read_noise_std_uS`` is not None)."""
    dev = chip.device
    assert isinstance(dev, PCM)
    return chip.noise.read_noise and dev.read_noise_scale != 0.0 and max(t_s, 0.0) > dev.t_read_s


def draw_block(g_target_uS: torch.Tensor, used: torch.Tensor, chip: ChipSpec, seed: int,
               out: torch.Tensor | None = None) -> DeviceState:
    """The programmed state of the targets ``(S, 2, T, R, c)`` (µS; a view with contiguous
    rows will do; ``used`` ``(T, R)`` False for padding rows: 0 S, no drift), drawn with the
    block's ``seed`` (module doc). ``out``: float32 ``(2, >= numel)`` scratch the state is
    written to (its first elements, viewed), e.g. reused from block to block."""
    mod = fused_usable(chip, g_target_uS)
    if mod is None:
        raise RuntimeError("draw_block: the fused PCM kernel does not apply here (see fused_usable)")
    g_t = g_target_uS if g_target_uS.stride(-1) == 1 else g_target_uS.contiguous()
    out = torch.empty(2, g_t.numel(), dtype=torch.float32) if out is None else out
    g, nu = mod.pcm_draw_block(g_t, used.contiguous(), _signed64(seed), kernel_params(chip.device), out)
    return DeviceState(g, nu)


def read_block(mod, chip: ChipSpec, st: DeviceState, t_s: float, phys_rows: int, cols_w: int, unit: float,
               w: torch.Tensor, var: torch.Tensor | None, var_scale: torch.Tensor | None, c0: int) -> None:
    """Columns ``[c0, c0 + c)`` of ``w`` (and of ``var``, or None: noiseless reads), both
    ``(*lead, R, S, out)`` contiguous, from the state ``(S, 2, *lead, R, c)`` at ``t_s``:
    what :meth:`aimc.tiles.matrices.MatrixBuilder.add` computes (module doc). ``var``:
    bfloat16, or uint8 codes with their float32 ``var_scale`` ``(*lead[:-1], 1, S, out)``
    (:func:`~aimc.tiles.fused.encode_var` of each tile column); ``unit``: output codes per
    weight unit and input code; ``phys_rows``, ``cols_w``: the tile's rows and weight
    columns (IR drop)."""
    dev = chip.device
    assert isinstance(dev, PCM)
    t_s = check_time_s(t_s)
    ratio = max(t_s, dev.t0_s) / dev.t0_s
    log_ratio = float(torch.log(torch.tensor(ratio, dtype=torch.float32)))  # as power_law_drift rounds it
    read_factor = 0.0
    if var is not None:  # the factor of PCM.read_noise_std_uS
        t = max(t_s, 0.0)
        read_factor = math.sqrt(math.log((t + dev.t_read_s) / (2.0 * dev.t_read_s))) * dev.read_noise_scale
    dg = dev.g_max_uS - dev.g_min_uS
    g, nu = st.g_uS, st.drift
    S, R = g.shape[0], g.shape[-2]
    g5 = g.reshape(S, 2, -1, R, g.shape[-1]).contiguous()
    nu5 = nu.reshape(g5.shape).contiguous()
    TT = g5.shape[2]
    w4 = w.view(TT, R, S, w.shape[-1])
    v4 = None if var is None else var.view(TT, R, S, var.shape[-1])
    ir_s = 1e-6 * chip.ir_drop.r_wire_ohm if ir_drop_active(chip) else 0.0
    mod.pcm_read_block(g5, nu5, kernel_params(dev), log_ratio, ratio != 1.0, read_factor, ir_s, cols_w, phys_rows,
                       unit / dg, (unit / dg) ** 2, w4, v4, var_scale, c0)
