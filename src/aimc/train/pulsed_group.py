"""Several pulsed arrays updated in one vectorised pass (the fast mode's hot path).

A small network keeps one :class:`~aimc.train.pulsed.PulsedArray` per weight matrix;
updating each on its own costs the same few dozen tensor operations per array however
small it is. :class:`PulsedGroup` does the fast-mode pulse update
(:meth:`PulsedArray.pulse_update`, ``mode="fast"``) of all its arrays at once: each
array's expected counts come from its own inputs and errors (one batched matmul each);
drawing the integer counts, the pulse response, the cycle-to-cycle noise and the clipping
run once over all devices, flattened. Per device this is the same computation with the
same distributions as one :meth:`PulsedArray.pulse_update` per array (identical draws
for a single array); the random streams are only split differently.

Example:
    >>> import torch
    >>> from aimc.physics.pulsed import PULSED_PRESETS
    >>> from aimc.train.pulsed import PulsedArray
    >>> g = torch.Generator().manual_seed(0)
    >>> dev = PULSED_PRESETS["ecram"]
    >>> a, b = PulsedArray.from_device(dev, (4, 3), g), PulsedArray.from_device(dev, (2, 4), g)
    >>> group = PulsedGroup([a, b])
    >>> group.pulse_update([torch.ones(8, 3), torch.ones(8, 4)], [torch.ones(8, 4), torch.ones(8, 2)],
    ...                    [0.1, 0.1], bl=31, generator=g)
    >>> bool((a.w < 0).all() and (b.w < 0).all())
    True
"""
from __future__ import annotations

from typing import Sequence

import torch

from aimc.physics.pulsed import linear_response
from aimc.train.pulsed import PulsedArray, _check_generator, _round_counts

__all__ = ["PulsedGroup"]


class PulsedGroup:
    """Fast-mode pulse updates of several :class:`PulsedArray` s of one device kind at once.

    The arrays' device-to-device parameters (step scales, bounds) are read once, here;
    their weights ``w`` are read at each update and replaced by views of one new flat
    tensor (so an array's ``w`` is never changed in place by the group).

    Args:
        arrays: the arrays (any shapes), all with the same
            :class:`~aimc.physics.pulsed.PulsedDevice` config, dtype and tensor device.

    Raises:
        ValueError: no arrays, or arrays differing in device config, dtype or tensor device.
    """

    def __init__(self, arrays: Sequence[PulsedArray]):
        self.arrays = list(arrays)
        if not self.arrays:
            raise ValueError("arrays must hold at least one PulsedArray")
        first = self.arrays[0]
        for a in self.arrays[1:]:
            if a.device != first.device or a.w.dtype != first.w.dtype or a.w.device != first.w.device:
                raise ValueError("arrays must share the device config, dtype and tensor device; got "
                                 f"{a.device.kind}/{a.w.dtype}/{a.w.device} vs "
                                 f"{first.device.kind}/{first.w.dtype}/{first.w.device}")
        self.device = first.device
        self.sizes = [a.w.numel() for a in self.arrays]
        self._flat = self.device.kind != "exp_step"  # exp_step: response per array
        if self._flat:
            def rows(t: torch.Tensor | None) -> torch.Tensor:
                assert t is not None  # same device config: linear in w for every array
                return t.reshape(2, -1)

            self._sa = torch.cat([rows(a._sa) for a in self.arrays], 1)  # (2, N)
            self._sb = None if first._sb is None else torch.cat([rows(a._sb) for a in self.arrays], 1)
            self._lo = torch.cat([a.w_min_dev.reshape(-1) for a in self.arrays])  # (N,)
            self._hi = torch.cat([a.w_max_dev.reshape(-1) for a in self.arrays])

    def pulse_update(self, xs: Sequence[torch.Tensor], ds: Sequence[torch.Tensor], lrs: Sequence[float],
                     bl: int, generator: torch.Generator, update_management: bool = True) -> None:
        """Stochastic pulse update ``w_i += ~(-lr_i * d_i^T x_i)`` of every array ``i``.

        Args:
            xs: inputs (B, in_i) per array. ds: errors (B, out_i). lrs: learning rates.
            bl: pulse-train length. generator: randomness (on the arrays' tensor device).
            update_management: balance the two pulse probabilities of each array.
        """
        _check_generator(generator)
        if not len(xs) == len(ds) == len(lrs) == len(self.arrays):
            raise ValueError(f"need one x, d and lr per array ({len(self.arrays)}), "
                             f"got {len(xs)}, {len(ds)}, {len(lrs)}")
        moments = [a._count_moments(*a._scaled(x, d, lr, bl, update_management), bl)
                   for a, x, d, lr in zip(self.arrays, xs, ds, lrs)]
        mu = torch.cat([m[0].reshape(2, -1) for m in moments], 1)  # (2, N) (up, down)
        var = torch.cat([m[1].reshape(2, -1) for m in moments], 1)
        noisy = self.device.dw_min_std > 0  # one draw: 2 count Gaussians (+ 1 cycle-to-cycle)
        z = torch.randn((3 if noisy else 2, mu.shape[1]), generator=generator, dtype=mu.dtype, device=mu.device)
        u = torch.rand(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        n = _round_counts(mu, var, u, z[:2])
        if not self._flat:
            for a, nk, zk in zip(self.arrays, n.split(self.sizes, 1), z[2].split(self.sizes) if noisy else
                                 [None] * len(self.arrays)):
                a._apply_counts(nk.reshape(2, *a.w.shape), None if zk is None else zk.view(a.w.shape))
            return
        w0 = torch.cat([a.w.reshape(-1) for a in self.arrays])
        w1 = linear_response(w0, n, z[2] if noisy else None, self._sa, self._sb, self._lo, self._hi,
                             self.device.dw_min_std)
        for a, part in zip(self.arrays, w1.split(self.sizes)):
            a.w = part.view(a.w.shape)
