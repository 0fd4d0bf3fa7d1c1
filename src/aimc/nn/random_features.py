"""Random features of the softmax kernel: projections and feature maps (pure functions).

The softmax kernel ``SM(x, y) = exp(x . y)`` (attention's ``exp(q . k / sqrt(d))`` once
``q`` and ``k`` are pre-scaled by ``d^-1/4``) is estimated by ``phi(x) . phi(y)``, where
``phi`` applies a random projection ``W`` (``m`` rows of dimension ``d``) and an
element-wise map. With Gaussian rows ``w ~ N(0, I_d)`` each map is unbiased,
``E[phi(x) . phi(y)] = SM(x, y)``, and the estimate averages ``m`` independent terms, so
its standard error falls as ``1/sqrt(m)``:

* ``trig``, random Fourier features (Rahimi & Recht, NeurIPS 2007), since
  ``SM(x, y) = exp(|x|^2/2) exp(|y|^2/2) exp(-|x - y|^2/2)`` and
  ``E[cos(w . (x - y))] = exp(-|x - y|^2/2)``:
  ``phi(x) = exp(|x|^2/2) / sqrt(m) [cos(Wx), sin(Wx)]`` (``2m`` features, may be negative);
* ``positive``, FAVOR+ positive features (Choromanski et al., "Rethinking attention with
  Performers", ICLR 2021, Lemma 1), since ``E[exp(w . z)] = exp(|z|^2/2)``:
  ``phi(x) = exp(-|x|^2/2) / sqrt(m) exp(Wx)`` (``m`` features, all > 0);
* ``hyperbolic``, the same with ``cosh`` (Performers, Lemma 1; the form of Büchel,
  Camposampiero et al., Nat. Mach. Intell. 2024, arXiv:2411.03375):
  ``phi(x) = exp(-|x|^2/2) / sqrt(2m) [exp(Wx), exp(-Wx)]`` (``2m`` features, lower variance).

Projections (:func:`random_projection`): ``iid`` Gaussian rows, or ``orthogonal`` random
features (ORF; Yu et al., NeurIPS 2016): blocks of ``d`` mutually orthogonal rows (QR of
a Gaussian matrix, sign-corrected so each block is Haar-distributed), with row norms
``chi``-distributed (each row then distributed as a Gaussian row: the estimate stays
unbiased, with a lower variance) or all ``sqrt(d)`` (``fixed``: the paper's 128 rows "scaled
to norm sqrt(d)", the Performers' regularised softmax kernel; its bias is O(1/d)).

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> w = random_projection(8, 4096, "iid", generator=g)
    >>> x, y = 0.3 * torch.randn(8, generator=g), 0.3 * torch.randn(8, generator=g)
    >>> est = (feature_map(x @ w.T, x, "hyperbolic") * feature_map(y @ w.T, y, "hyperbolic")).sum()
    >>> abs(float(est / torch.exp(x @ y)) - 1.0) < 0.05
    True
"""
from __future__ import annotations

import math
from typing import Literal

import torch

__all__ = ["Features", "Projection", "RowNorm", "random_projection", "feature_map", "n_features",
           "log_scale", "softmax_kernel"]

Features = Literal["trig", "positive", "hyperbolic"]
Projection = Literal["iid", "orthogonal"]
RowNorm = Literal["chi", "fixed"]


def random_projection(d: int, m: int, kind: Projection = "orthogonal", norm: RowNorm = "chi", *,
                      generator: torch.Generator, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A random projection ``W`` of shape ``(m, d)`` (module doc).

    Args:
        d: input dimension (the attention head's dimension). m: number of projections.
        kind: ``iid`` Gaussian rows or ``orthogonal`` blocks of ``d`` rows.
        norm: row norms of ``orthogonal``: ``chi`` (as Gaussian rows) or ``fixed`` (``sqrt(d)``).
        generator: the random stream (same seed, same matrix).

    Example:
        >>> w = random_projection(4, 8, "orthogonal", "fixed", generator=torch.Generator().manual_seed(1))
        >>> torch.allclose(w[:4] @ w[:4].T, 4 * torch.eye(4), atol=1e-5)
        True
    """
    if d < 1 or m < 1:
        raise ValueError(f"random_projection: d and m must be >= 1, got d={d}, m={m}")
    if kind not in ("iid", "orthogonal") or norm not in ("chi", "fixed"):
        raise ValueError(f"random_projection: kind must be 'iid' or 'orthogonal' and norm 'chi' or 'fixed', "
                         f"got kind={kind!r}, norm={norm!r}")
    if kind == "iid":
        return torch.randn(m, d, generator=generator, dtype=torch.float64).to(dtype)
    blocks = math.ceil(m / d)
    g = torch.randn(blocks, d, d, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(g)  # (blocks, d, d)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)  # Haar (Mezzadri 2007)
    rows = q.transpose(-1, -2).reshape(blocks * d, d)[:m]  # orthonormal rows within each block
    if norm == "fixed":
        scale = torch.full((m, 1), math.sqrt(d), dtype=torch.float64)
    else:
        scale = torch.randn(m, d, generator=generator, dtype=torch.float64).norm(dim=1, keepdim=True)
    return (rows * scale).to(dtype)


def n_features(kind: Features, m: int) -> int:
    """Length of ``phi(x)`` for ``m`` projections: ``2m`` (trig, hyperbolic) or ``m``."""
    return m if kind == "positive" else 2 * m


def feature_map(wx: torch.Tensor, x: torch.Tensor, kind: Features, stabilizer: torch.Tensor | None = None
                ) -> torch.Tensor:
    """``phi(x)`` from the projections ``wx = x W^T`` (..., m) and the inputs ``x`` (..., d).

    Args:
        wx: projected inputs (the analog part). x: the inputs themselves (for ``|x|^2``).
        kind: ``trig``, ``positive`` or ``hyperbolic`` (module doc).
        stabilizer: a value (broadcast to (..., 1)) subtracted inside every exponent: it
            multiplies ``phi`` by ``exp(-stabilizer)``, which cancels in attention's
            normalisation when it is constant per query, or over all keys.

    Returns:
        (..., :func:`n_features`) features.
    """
    m = wx.shape[-1]
    half_sq = 0.5 * (x * x).sum(dim=-1, keepdim=True)  # (..., 1)
    c = 0.0 if stabilizer is None else stabilizer
    if kind == "trig":
        return torch.exp(half_sq - c) / math.sqrt(m) * torch.cat([torch.cos(wx), torch.sin(wx)], dim=-1)
    if kind == "positive":
        return torch.exp(wx - half_sq - c) / math.sqrt(m)
    if kind == "hyperbolic":
        return torch.exp(torch.cat([wx, -wx], dim=-1) - half_sq - c) / math.sqrt(2 * m)
    raise ValueError(f"feature_map: kind must be 'trig', 'positive' or 'hyperbolic', got {kind!r}")


def log_scale(wx: torch.Tensor, x: torch.Tensor, kind: Features) -> torch.Tensor:
    """The largest exponent of :func:`feature_map` per row (..., 1): the natural stabilizer."""
    half_sq = 0.5 * (x * x).sum(dim=-1, keepdim=True)
    if kind == "trig":
        return half_sq
    top = wx.abs() if kind == "hyperbolic" else wx
    return top.amax(dim=-1, keepdim=True) - half_sq


def softmax_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The exact kernel ``exp(x y^T)``: (..., L, d), (..., S, d) -> (..., L, S).

    Example:
        >>> round(float(softmax_kernel(torch.ones(1, 2), torch.ones(1, 2))), 4)  # e^2
        7.3891
    """
    return torch.exp(x @ y.transpose(-1, -2))
