"""Pulsed analog device arrays and their stochastic-pulse outer-product updates.

Weights are in normalised units (aihwkit's convention): one device per weight, ``w`` in
``[w_min, w_max]``, changed in place only by voltage pulses. The device model (the
per-pulse response of each ``kind``, cycle-to-cycle noise, device-to-device draws, the
fits) is physics: :mod:`aimc.physics.pulsed` (:class:`~aimc.physics.pulsed.PulsedDevice`;
a chip carries one in its ``pulsed:`` section). This module holds the update algorithm.

Stochastic pulse update (Gokmen & Vlasov, Front. Neurosci. 10:333 (2016); aihwkit
``PulseType.STOCHASTIC_COMPRESSED``): for each sample, input ``j`` fires a pulse in each of
``bl`` slots with probability ``p_j = min(|x_j|*s_x, 1)``, error row ``i`` with
``q_i = min(|d_i|*s_d, 1)``; device ``ij`` receives ``n_ij = sum_t a_jt*b_it`` pulses of sign
``-sign(x_j)*sign(d_i)``. With ``s_x*s_d = lr/(dw_min*bl)`` one gets
``E[n_ij] = lr*|x_j||d_i|/dw_min``, so for an ideal symmetric constant-step device
``E[dw] = -lr * d^T x`` exactly (unless a probability is clipped at 1). Update management
(aihwkit default) balances the two: ``s_x = sqrt(lr/(dw_min*bl) * max|d|/max|x|)``,
``s_d = lr/(dw_min*bl)/s_x``.

Two update modes (:meth:`PulsedArray.pulse_update`): ``exact`` draws the bit streams and
applies samples and pulses one at a time; ``fast`` (default, the hot path) draws the
batch's up and down counts per device from their expected values and applies them in one
closed-form pass; what it approximates is listed in :meth:`PulsedArray.apply_counts`.
:class:`aimc.train.pulsed_group.PulsedGroup` runs the fast update of several arrays in one
pass. The optimizers (analog SGD, mixed precision, Tiki-Taka v2, chopped TTv2) are in
:mod:`aimc.train.pulsed_optim`, which imports this module (never the other way round).

Example:
    >>> import torch
    >>> from aimc.physics.pulsed import PULSED_PRESETS
    >>> dev = PULSED_PRESETS["idealized"]
    >>> g = torch.Generator().manual_seed(0)
    >>> arr = PulsedArray.from_device(dev, (2, 3), g)
    >>> arr.pulse_update(torch.ones(1, 3), torch.ones(1, 2), lr=0.01, bl=31, generator=g)
    >>> bool((arr.w < 0).all())
    True
"""
from __future__ import annotations

from typing import Literal

import torch

from aimc.physics import pulsed as phys
from aimc.physics.pulsed import VAR_FLOOR, DeviceDraws, PulsedDevice

__all__ = ["PulsedArray", "sample_counts", "Mode"]


def _check_generator(generator) -> None:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")


Mode = Literal["fast", "exact"]


def _check_mode(mode) -> None:
    if mode not in ("fast", "exact"):
        raise ValueError(f"mode must be 'fast' or 'exact', got {mode!r}")


def sample_counts(mu: torch.Tensor, generator: torch.Generator, var: torch.Tensor | None = None) -> torch.Tensor:
    """Integer pulse counts with mean ``mu`` and variance close to ``var`` (fast mode).

    ``n = max(floor(mu + sqrt(max(var - 1, 0))*z + u), 0)``, ``u ~ U[0, 1)``, ``z ~ N(0, 1)``
    (``var`` defaults to ``mu``, the Poisson limit): stochastic rounding alone where
    ``var <= 1`` (Bernoulli, the small-``mu`` limit of Binomial counts), plus a Gaussian
    elsewhere, so the variance is within one count² of ``var`` (clipping at 0 biases the
    mean by < 0.01 counts).

    Example:
        >>> import torch
        >>> n = sample_counts(torch.full((4000,), 0.3), torch.Generator().manual_seed(0))
        >>> abs(float(n.mean()) - 0.3) < 0.03, set(n.tolist()) <= {0.0, 1.0}
        (True, True)
    """
    var = mu if var is None else var
    u = torch.rand(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    z = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return _round_counts(mu, var, u, z)


def _round_counts(mu: torch.Tensor, var: torch.Tensor, u: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """:func:`sample_counts` given its uniform ``u`` and Gaussian ``z`` draws (``u`` is overwritten)."""
    sd = (var - 1.0).clamp_(min=VAR_FLOOR).sqrt_()  # ~0 where var <= 1: stochastic rounding alone
    return torch.addcmul(u.add_(mu), sd, z).floor_().relu_()


class PulsedArray:
    """A crossbar of pulsed devices: weights ``w`` (out, in) plus per-device draws.

    Every tensor lives on ``w``'s device with ``w``'s dtype; the generator passed to the
    update methods must be on that device too. The device's response is computed by
    :mod:`aimc.physics.pulsed`; this class decides which pulses are applied when.

    Attributes:
        device: the :class:`~aimc.physics.pulsed.PulsedDevice` config.
        w: weights (out, in), normalised units.
        dw_up, dw_down: per-device step scales (out, in).
        w_max_dev, w_min_dev: per-device bounds (out, in).
    """

    def __init__(self, device: PulsedDevice, w: torch.Tensor, dw_up: torch.Tensor,
                 dw_down: torch.Tensor, w_max_dev: torch.Tensor, w_min_dev: torch.Tensor):
        self.device, self.dw_up, self.dw_down = device, dw_up, dw_down
        self.w_max_dev, self.w_min_dev = w_max_dev, w_min_dev
        self.w = torch.minimum(torch.maximum(w, w_min_dev), w_max_dev)
        lin = phys.linear_coefficients(device, self.draws())  # (up, -down) = _sa - _sb*w, (2, out, in)
        self._sa: torch.Tensor | None
        self._sb: torch.Tensor | None
        self._sa, self._sb = (None, None) if lin is None else lin

    def draws(self, cols=None) -> DeviceDraws:
        """The per-device parameters, of the columns ``cols`` only if given."""
        if cols is None:
            return DeviceDraws(self.dw_up, self.dw_down, self.w_max_dev, self.w_min_dev)
        return DeviceDraws(self.dw_up[:, cols], self.dw_down[:, cols], self.w_max_dev[:, cols], self.w_min_dev[:, cols])

    @classmethod
    def from_device(cls, device: PulsedDevice, shape: tuple[int, int], generator: torch.Generator,
                    w_init: torch.Tensor | None = None, dtype: torch.dtype = torch.float32) -> "PulsedArray":
        """Draw the device-to-device parameters (:func:`~aimc.physics.pulsed.draw_devices`);
        weights start at ``w_init`` (default 0), clipped. All tensors are created on the
        generator's device."""
        _check_generator(generator)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"shape must be (out, in) with positive sizes, got {tuple(shape)}")
        dw_up, dw_down, w_max, w_min = phys.draw_devices(device, tuple(shape), generator, dtype)
        dev = generator.device
        w = torch.zeros(shape, dtype=dtype, device=dev) if w_init is None else w_init.to(dev, dtype).clone()
        if w.shape != tuple(shape):
            raise ValueError(f"w_init has shape {tuple(w.shape)}, expected {tuple(shape)}")
        return cls(device, w, dw_up, dw_down, w_max, w_min)

    def step_sizes(self, w: torch.Tensor | None = None, cols=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Magnitudes (up, down) of one noise-free pulse at weights ``w`` (default: current);
        ``cols`` restricts the devices to those columns (``w`` then has only those)."""
        c = slice(None) if cols is None else cols
        return phys.step_sizes(self.device, self.w[:, c] if w is None else w, self.draws(cols))

    def symmetry_point(self, iters: int = 60) -> torch.Tensor:
        """Per-device weight where up and down steps are equal
        (:func:`~aimc.physics.pulsed.symmetry_point`)."""
        return phys.symmetry_point(self.device, self.draws(), iters)

    def apply_pulses(self, n: torch.Tensor, generator: torch.Generator, mode: Mode = "exact") -> None:
        """Apply ``n`` (out, in) signed pulse counts.

        ``exact``: one pulse at a time per device (loop over pulse index ``k = 1 .. max|n|``,
        vectorised over devices). ``fast``: :meth:`apply_counts` in one pass.
        """
        _check_generator(generator)
        _check_mode(mode)
        n = torch.as_tensor(n, device=self.w.device).round()
        if n.shape != self.w.shape:
            raise ValueError(f"n has shape {tuple(n.shape)}, expected {tuple(self.w.shape)}")
        if mode == "fast":
            n = n.to(self.w.dtype)
            return self.apply_counts(n.clamp(min=0.0), (-n).clamp(min=0.0), generator)
        n = n.to(torch.int64)
        up, mag = n > 0, n.abs()
        kmax = int(mag.max()) if mag.numel() else 0
        draws, noisy = self.draws(), self.device.dw_min_std > 0
        for k in range(1, kmax + 1):
            z = torch.randn(self.w.shape, generator=generator, dtype=self.w.dtype, device=self.w.device) \
                if noisy else None
            self.w = torch.where(mag >= k, phys.one_pulse(self.device, self.w, up, z, draws), self.w)

    def apply_counts(self, n_up: torch.Tensor, n_down: torch.Tensor, generator: torch.Generator,
                     cols=None) -> None:
        """Apply ``n_up`` up- and ``n_down`` down-pulses per device in one pass (fast mode).

        The pulses are taken as finely interleaved and the response as continuous in the
        pulse count: ``dw/dt = n_up*up(w) - n_down*down(w)`` over ``t in [0, 1]``. For step
        sizes linear in ``w`` (``up = a_u - b_u*w``, ``down = a_d - b_d*w``: constant step,
        soft bounds, linear step) this is solved exactly
        (:func:`~aimc.physics.pulsed.linear_response`); ``exp_step`` takes one midpoint step
        (:func:`~aimc.physics.pulsed.midpoint_response`). Cycle-to-cycle noise is one
        Gaussian per device with the summed variance ``dw_min_std² * (n_up*up(w0)² +
        n_down*down(w0)²)``; the result is clipped to the bounds once. Versus
        :meth:`apply_pulses` (exact) this ignores the order of the pulses (second order in
        the count times the step's slope), the discreteness of the response (``(1 - b)^n``
        vs ``exp(-n*b)``, relative error ``O(b)``, ``b = dw_min/w_max ~ 1e-3``) and clipping
        between pulses.

        Args:
            n_up, n_down: non-negative counts, (out, in) or (out, len(cols)).
            generator: randomness of the cycle-to-cycle noise.
            cols: optional column index (int tensor or slice) of the devices to pulse.
        """
        n = torch.stack((n_up, n_down)).to(self.w.dtype)  # (2, out, in)
        z = torch.randn(n.shape[1:], generator=generator, dtype=n.dtype, device=n.device) \
            if self.device.dw_min_std > 0 else None
        self._apply_counts(n, z, cols)

    def _apply_counts(self, n: torch.Tensor, z: torch.Tensor | None, cols=None) -> None:
        """:meth:`apply_counts` with counts ``n`` (2, out, in) (up, down) and the noise's
        standard Gaussian ``z`` (out, in) given (None: no cycle-to-cycle noise)."""
        c = slice(None) if cols is None else cols
        w0 = self.w if cols is None else self.w[:, cols]
        if self._sa is None:  # exp_step: midpoint rule
            w1 = phys.midpoint_response(self.device, w0, n, z, self.draws(cols))
        else:
            sb = None if self._sb is None else self._sb[:, :, c]
            w1 = phys.linear_response(w0, n, z, self._sa[:, :, c], sb, self.w_min_dev[:, c], self.w_max_dev[:, c],
                                      self.device.dw_min_std)
        if cols is None:
            self.w = w1
        else:
            self.w[:, cols] = w1

    def _scaled(self, x: torch.Tensor, d: torch.Tensor, lr: float, bl: int,
                update_management: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate; ``x*s_x`` (B, in) and ``d*s_d`` (B, out), not yet clipped to ±1."""
        if not isinstance(bl, int) or bl < 1:
            raise ValueError(f"bl (pulse-train length) must be an int >= 1, got {bl!r}")
        if not lr >= 0:
            raise ValueError(f"lr must be >= 0, got {lr!r}")
        if x.ndim != 2 or d.ndim != 2 or x.shape[0] != d.shape[0] or \
                x.shape[1] != self.w.shape[1] or d.shape[1] != self.w.shape[0]:
            raise ValueError(f"x (B, in) and d (B, out) must match w {tuple(self.w.shape)}; "
                             f"got x {tuple(x.shape)}, d {tuple(d.shape)}")
        if x.dtype != self.w.dtype or d.dtype != self.w.dtype:
            x, d = x.to(self.w.dtype), d.to(self.w.dtype)
        c = lr / (self.device.dw_min * bl)
        if update_management:
            xm = x.abs().amax(1, keepdim=True).clamp_(min=1e-30)  # (B, 1)
            dm = d.abs().amax(1, keepdim=True).clamp_(min=1e-30)
            s_x = dm.div_(xm).mul_(c).sqrt_()  # sqrt(c * max|d| / max|x|)
            return x * s_x, d * s_x.reciprocal_().mul_(c)
        s = c ** 0.5
        return x * s, d * s

    def _probabilities(self, x: torch.Tensor, d: torch.Tensor, lr: float, bl: int,
                       update_management: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Signed pulse probabilities ``sign(x)*p`` (B, in) and ``sign(d)*q`` (B, out)."""
        xs, ds = self._scaled(x, d, lr, bl, update_management)
        return xs.clamp_(-1.0, 1.0), ds.clamp_(-1.0, 1.0)

    def pulse_counts(self, x: torch.Tensor, d: torch.Tensor, lr: float, bl: int,
                     generator: torch.Generator, update_management: bool = True) -> torch.Tensor:
        """Signed coincidence counts (B, out, in) of the stochastic pulse trains (module doc)."""
        _check_generator(generator)
        p, q = self._probabilities(x, d, lr, bl, update_management)  # (B, in), (B, out)
        a = (torch.rand((*p.shape, bl), generator=generator, dtype=p.dtype, device=p.device)
             < p.abs()[..., None]).to(p.dtype)
        b = (torch.rand((*q.shape, bl), generator=generator, dtype=p.dtype, device=p.device)
             < q.abs()[..., None]).to(p.dtype)
        if b.shape[1] * a.shape[1] * bl <= 1 << 20:  # small: broadcast-sum beats BLAS start-up
            n = (b[:, :, None, :] * a[:, None, :, :]).sum(-1)  # (B, out, in) coincidences
        else:
            n = torch.bmm(b, a.transpose(1, 2))  # (B, out, in) coincidences
        return -n * torch.sign(q)[:, :, None] * torch.sign(p)[:, None, :]

    def expected_counts(self, x: torch.Tensor, d: torch.Tensor, lr: float, bl: int,
                        update_management: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Expected up- and down-pulse counts (out, in) summed over the batch.

        With the probabilities split by sign, ``p± = max(±P, 0)`` (B, in) and ``q±`` (B,
        out): a device steps down where ``x`` and ``d`` have the same sign, so down ``=
        bl*(q+^T p+ + q-^T p-)`` and up ``= bl*(q+^T p- + q-^T p+)``: one batched matmul
        over the stacked halves, no bit streams (the same with squared probabilities gives
        the Binomial variances ``sum_b bl*pq*(1 - pq)`` that :meth:`pulse_update` uses).
        """
        up, down = self._count_moments(*self._scaled(x, d, lr, bl, update_management), bl)[0].unbind(0)
        return up, down

    @staticmethod
    def _count_moments(xs: torch.Tensor, ds: torch.Tensor, bl: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Means (2, out, in) of the (up, down) counts and their Binomial variances, from the
        scaled inputs ``xs`` (B, in) and errors ``ds`` (B, out) (clipped to ±1 here)."""
        b = xs.shape[0]
        xn = xs.neg()
        p = torch.cat((xn, xs, xn)).clamp_(0.0, 1.0)  # (3B, in): p-, p+, p-
        p = torch.stack((p[:2 * b], p[b:]))  # (2, 2B, in): (p-, p+) for up, (p+, p-) for down
        p = torch.cat((p, p * p))  # (4, 2B, in)
        q = torch.cat((ds, ds.neg())).clamp_(0.0, 1.0)  # (2B, out): q+, q-
        q2 = q * q
        m = torch.bmm(torch.stack((q, q, q2, q2)).transpose(1, 2), p).mul_(bl)  # (4, out, in)
        return m[:2], m[:2] - m[2:]  # (up, down) sum pq, sum pq - (pq)², times bl

    def pulse_update(self, x: torch.Tensor, d: torch.Tensor, lr: float, bl: int,
                     generator: torch.Generator, update_management: bool = True,
                     mode: Mode = "fast") -> None:
        """Stochastic rank-one pulse update ``w += ~(-lr * d^T x)`` for a mini-batch.

        ``exact``: bit streams drawn per sample (:meth:`pulse_counts`), samples applied in
        order, pulses one at a time (:meth:`apply_pulses`). ``fast``: the batch's expected
        up and down counts (:meth:`expected_counts`) drawn as integers with
        :func:`sample_counts` and applied in one pass (:meth:`apply_counts`). Fast mode
        keeps the mean counts exactly (clipped probabilities included) and their Binomial
        variance to within one count² (:func:`sample_counts`), the asymmetric and
        weight-dependent response and the cycle-to-cycle noise; it drops the correlation
        of counts sharing a row or column within a sample and makes the approximations
        listed in :meth:`apply_counts`. It runs without host synchronisation.

        Args:
            x: inputs (B, in). d: errors (B, out). lr: learning rate. bl: pulse-train length.
            generator: randomness of the pulse trains and cycle-to-cycle noise.
            update_management: balance the two pulse probabilities (module doc).
            mode: ``"fast"`` (default) or ``"exact"``.
        """
        _check_generator(generator)
        _check_mode(mode)
        if mode == "exact":
            n = self.pulse_counts(x, d, lr, bl, generator, update_management)
            for nb in n:  # samples are sequential in hardware
                self.apply_pulses(nb, generator)
            return
        mu, var = self._count_moments(*self._scaled(x, d, lr, bl, update_management), bl)
        noisy = self.device.dw_min_std > 0  # one draw: 2 count Gaussians (+ 1 cycle-to-cycle)
        z = torch.randn((3 if noisy else 2, *mu.shape[1:]), generator=generator, dtype=mu.dtype, device=mu.device)
        u = torch.rand(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        self._apply_counts(_round_counts(mu, var, u, z[:2]), z[2] if noisy else None)
