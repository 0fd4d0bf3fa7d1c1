"""Wire resistance (IR drop) in a passive crossbar: exact nodal analysis and first order.

Circuit. ``R x C`` devices, conductance ``g[i, j]`` (µS) between a row node ``u(i, j)``
and a column node ``w(i, j)``. Row ``i`` is driven by an ideal source ``V[i]`` at its
left end; a wire segment of resistance ``r`` (ohm) lies between the driver and ``u(i, 0)``
and between ``u(i, j-1)`` and ``u(i, j)``. Column ``j`` is held at virtual ground by the
sense circuit at its bottom end; a segment ``r`` lies between ``w(i-1, j)`` and ``w(i, j)``
and between ``w(R-1, j)`` and the sink. The output is the current into the sink,
``I[j] = sum_i G_eff[i, j] V[i]``: the network is linear, so ``G_eff`` (µS) does not depend
on ``V``, and ``G_eff == g`` when ``r == 0``. Cell ``(0, C-1)`` (top row, last column) is
furthest from both its driver and its sink, so it sees the largest IR drop.

First order in ``r`` (derivation in :func:`effective_conductance_first_order`)::

    G_eff = g - r * 1e-6 * (D + K),
    D[i, j] = g[i, j] * sum_m g[i, m] * (min(j, m) + 1)        (row wires)
    K[m, j] = g[m, j] * sum_i g[i, j] * (R - max(i, m))        (column wires)

(``r`` in ohm times ``g`` in µS is ``1e-6 * r * g`` dimensionless). Its error is second
order, ``O((r g N^2)^2)`` relative, N = max(R, C).
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

__all__ = ["effective_conductance_exact", "effective_conductance_first_order"]

_RHS_BLOCK = 32  # unit inputs solved per triangular-solve call (bounds dense RHS memory)


def _one_blas_thread():
    """SuperLU's multi-RHS solve makes many tiny BLAS calls; threaded BLAS only slows
    them (measured 5-10x slower with 2 OpenBLAS threads on a busy 2-core machine)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _check_r(r_wire_ohm: float) -> float:
    try:
        r = float(r_wire_ohm)
    except (TypeError, ValueError):
        raise ValueError(f"r_wire_ohm must be a real number, got {r_wire_ohm!r}") from None
    if not math.isfinite(r) or r < 0.0:
        raise ValueError(f"r_wire_ohm must be finite and >= 0, got {r_wire_ohm!r}")
    return r


def _check_g(g_uS: torch.Tensor, exact_2d: bool) -> None:
    if not isinstance(g_uS, torch.Tensor):
        raise ValueError(f"g_uS must be a torch.Tensor, got {type(g_uS).__name__}")
    if not g_uS.is_floating_point():
        raise ValueError(f"g_uS must have a floating dtype, got {g_uS.dtype}")
    if exact_2d and g_uS.dim() != 2:
        raise ValueError(f"g_uS must be 2-D (R, C), got shape {tuple(g_uS.shape)}")
    if g_uS.dim() < 2 or g_uS.shape[-1] == 0 or g_uS.shape[-2] == 0:
        raise ValueError(f"g_uS must have shape (..., R, C) with R, C >= 1, got {tuple(g_uS.shape)}")
    if not bool(torch.isfinite(g_uS).all()):
        raise ValueError(f"g_uS must be finite; shape {tuple(g_uS.shape)} has NaN/inf entries")
    if bool((g_uS < 0).any()):
        raise ValueError(f"g_uS must be non-negative; min is {float(g_uS.min())} µS")


def effective_conductance_exact(g_uS: torch.Tensor, r_wire_ohm: float) -> torch.Tensor:
    """Exact effective conductance matrix of a crossbar with wire resistance.

    Nodal analysis of the circuit in the module docstring: with the ``2 R C`` unknown node
    voltages ``x = (u(i, j), w(i, j))`` and wire conductance ``gw = 1e6 / r`` (µS),
    Kirchhoff's current law gives ``L x = b`` with ``L`` the conductance Laplacian
    (the driver and sink nodes eliminated into the diagonal) and ``b[u(i, 0)] = gw V[i]``.
    ``L`` is factorised once (``scipy.sparse.linalg.splu``) and solved for the ``R`` unit
    inputs ``V = e_i``; the output current is ``I[j] = gw * w(R-1, j)``, so
    ``G_eff[i, j] = gw * w_i(R-1, j)`` (by reciprocity, ``L`` being symmetric, the ``C``
    unit sink injections are solved instead when ``C < R``). Computed in float64 on the
    CPU; about 2-3 s for 256 x 256 on 2 cores.

    Args:
        g_uS: ``(R, C)`` device conductances in µS, finite and ``>= 0``.
        r_wire_ohm: resistance of one wire segment in ohm, ``>= 0``.

    Returns:
        ``(R, C)`` tensor ``G_eff`` in µS (same dtype and device as ``g_uS``) with
        ``I_out[j] = sum_i G_eff[i, j] * V[i]``; a copy of ``g_uS`` when ``r_wire_ohm == 0``.

    Raises:
        ValueError: ``g_uS`` not 2-D / not floating / not finite / negative, or
            ``r_wire_ohm`` negative or not finite.

    Example:
        >>> g = torch.tensor([[10.0]], dtype=torch.float64)
        >>> effective_conductance_exact(g, 1000.0)  # 1 / (1/10 µS + 2 kOhm)
        tensor([[9.8039]], dtype=torch.float64)
    """
    _check_g(g_uS, exact_2d=True)
    r = _check_r(r_wire_ohm)
    if r == 0.0:
        return g_uS.clone()
    R, C = g_uS.shape
    g = g_uS.detach().to("cpu", torch.float64).numpy().ravel()  # cell k = i*C + j
    gw = 1e6 / r
    n = R * C
    k = np.arange(n)
    i, j = np.divmod(k, C)
    u, w = 2 * k, 2 * k + 1  # interleaved node numbering keeps the bandwidth small
    # Off-diagonal edges (a, b, conductance): devices, row wires, column wires.
    row = (j < C - 1)
    col = (i < R - 1)
    a = np.concatenate([u, u[row], w[col]])
    b = np.concatenate([w, u[row] + 2, w[col] + 2 * C])
    c = np.concatenate([g, np.full(int(row.sum()), gw), np.full(int(col.sum()), gw)])
    diag = np.zeros(2 * n)
    np.add.at(diag, a, c)
    np.add.at(diag, b, c)
    diag[u[j == 0]] += gw  # driver segment
    diag[w[i == R - 1]] += gw  # sink segment
    L = sp.coo_matrix(
        (np.concatenate([diag, -c, -c]),
         (np.concatenate([np.arange(2 * n), a, b]), np.concatenate([np.arange(2 * n), b, a]))),
        shape=(2 * n, 2 * n),
    ).tocsc()
    # L is symmetric positive definite: symmetric ordering, no pivoting.
    lu = spla.splu(L, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                   options={"SymmetricMode": True})
    drive = u[j == 0]  # u(i, 0) for i = 0..R-1
    sense = w[i == R - 1]  # w(R-1, j) for j = 0..C-1
    # L is symmetric, so G_eff[i, j] = gw^2 (L^-1)[sense_j, drive_i] = gw^2 (L^-1)[drive_i, sense_j]:
    # inject at whichever side has fewer nodes (reciprocity) and read the other.
    src, dst = (drive, sense) if R <= C else (sense, drive)
    out = np.empty((len(src), len(dst)))
    with _one_blas_thread():
        for s in range(0, len(src), _RHS_BLOCK):
            e = min(s + _RHS_BLOCK, len(src))
            rhs = np.zeros((2 * n, e - s))
            rhs[src[s:e], np.arange(e - s)] = gw
            out[s:e] = gw * lu.solve(rhs)[dst].T
    out = out if R <= C else out.T
    return torch.from_numpy(out).to(device=g_uS.device, dtype=g_uS.dtype)


def effective_conductance_first_order(g_uS: torch.Tensor, r_wire_ohm: float, extra_rows: int = 0) -> torch.Tensor:
    """First-order (in ``r``) effective conductance, vectorised and batched.

    At zeroth order ``u(i, j) = V[i]``, ``w(i, j) = 0`` and cell ``(i, m)`` carries
    ``g[i, m] V[i]``. Row segment ``k`` (driver side of ``u(i, k)``) carries
    ``sum_{m >= k} g[i, m] V[i]``, so ``u(i, j) = V[i] - r sum_m g[i, m] V[i] (min(j, m)+1)``.
    Column segment ``k`` (sink side of ``w(k, j)``) carries ``sum_{m <= k} g[m, j] V[m]``,
    so ``w(i, j) = r sum_m g[m, j] V[m] (R - max(i, m))``. With
    ``I[j] = sum_i g[i, j] (u(i, j) - w(i, j))`` and r·g scaled by ``1e-6`` (ohm·µS)::

        G_eff = g - 1e-6 r (D + K)
        D = g * cumsum_j(revcumsum_j(g))    # = g[i,j] sum_m g[i,m] (min(j,m)+1)
        K = g * revcumsum_i(cumsum_i(g))    # = g[m,j] sum_i g[i,j] (R - max(i,m))

    Cost ``O(R C)``; differentiable; runs on any device and dtype.

    Args:
        g_uS: ``(..., R, C)`` device conductances in µS, finite and ``>= 0``.
        r_wire_ohm: resistance of one wire segment in ohm, ``>= 0``.
        extra_rows: empty rows (no conductance) between the last given row and the column
            sinks: each adds one column segment that carries the whole column current, so
            ``K`` gains ``g * extra_rows * sum_i g[i, j]`` (the same as padding ``g`` with
            that many zero rows, without computing over them).

    Returns:
        ``(..., R, C)`` tensor ``G_eff`` in µS; a copy of ``g_uS`` when ``r_wire_ohm == 0``.
        Accurate to ``O((1e-6 r g N^2)^2)`` relative; it may go negative when
        ``1e-6 r g N^2`` is not small (use the exact solver there).

    Raises:
        ValueError: ``g_uS`` with fewer than 2 dims / not floating / not finite /
            negative, or ``r_wire_ohm`` negative or not finite.

    Example:
        >>> g = torch.tensor([[10.0]], dtype=torch.float64)
        >>> effective_conductance_first_order(g, 1000.0)  # 10 - 2e-3 * 10**2
        tensor([[9.8000]], dtype=torch.float64)
    """
    _check_g(g_uS, exact_2d=False)
    r = _check_r(r_wire_ohm)
    if r == 0.0:
        return g_uS.clone()
    row_tail = g_uS.flip(-1).cumsum(-1).flip(-1)  # sum_{m >= k} g[i, m]
    d = g_uS * row_tail.cumsum(-1)
    if extra_rows < 0:
        raise ValueError(f"extra_rows must be >= 0, got {extra_rows}")
    # sums down the columns with the columns contiguous (ATen's cumsum over a strided
    # dimension is ~7x slower than a transposed copy and a contiguous cumsum; same sums)
    col_head = g_uS.transpose(-1, -2).contiguous().cumsum(-1)  # (..., C, R): sum_{m <= k} g[m, j]
    col_tail = col_head.flip(-1).cumsum(-1).flip(-1)
    if extra_rows:
        col_tail = col_tail + extra_rows * col_head[..., -1:]
    k = g_uS * col_tail.transpose(-1, -2)
    return g_uS - (1e-6 * r) * (d + k)
