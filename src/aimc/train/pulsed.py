"""Pulsed analog devices, stochastic-pulse outer-product updates and on-chip optimizers.

Weights are in normalised units (aihwkit's convention): one device per weight, ``w`` in
``[w_min, w_max]``, changed in place only by voltage pulses. Per pulse (``+``: up, the
weight grows; ``-``: down), with per-device step scales ``dw_up = dw_min_dev*(1+up_down)``
and ``dw_down = dw_min_dev*(1-up_down)``:

* ``constant_step``: ``dw = ±dw_up|down``;
* ``soft_bounds`` (Fuller et al. Adv. Mater. 2017; aihwkit ``SoftBoundsDevice``):
  ``dw_+ = dw_up*(1 - w/w_max)``, ``dw_- = dw_down*(1 - w/w_min)`` (needs w_min < 0 < w_max);
* ``linear_step`` (aihwkit ``LinearStepDevice``, bounds of the config as reference):
  ``dw_+ = dw_up*(1 - gamma_up*w/w_max)``, ``dw_- = dw_down*(1 - gamma_down*w/w_min)``;
* ``exp_step`` (aihwkit ``ExpStepDevice``, fit to Gong et al. Nat. Commun. 9, 2102 (2018)):
  ``z = 2*es_a*w/(w_max - w_min) + es_b``, ``dw_+ = dw_up*max(1 - es_A_up*exp(es_gamma_up*z), 0)``,
  ``dw_- = dw_down*max(1 - es_A_down*exp(-es_gamma_down*z), 0)``.

Every pulse's step is multiplied by ``1 + dw_min_std*z`` (cycle-to-cycle, ``z ~ N(0,1)``
fresh per pulse) and the result is clipped to the device's bounds. Device-to-device draws
(once, at construction): ``dw_min_dev = dw_min*max(1 + dw_min_dtod*z1, 0)``,
``w_max_dev = w_max*max(1 + w_bound_dtod*z2, 0.05)``, same for ``w_min_dev`` with ``z3``.
Note: aihwkit biases only one direction (``up_down>0`` shrinks the down step); here the
asymmetry is centred, ``dw_min*(1±up_down)``; presets below are converted accordingly.

Stochastic pulse update (Gokmen & Vlasov, Front. Neurosci. 10:333 (2016); aihwkit
``PulseType.STOCHASTIC_COMPRESSED``): for each sample, input ``j`` fires a pulse in each of
``bl`` slots with probability ``p_j = min(|x_j|*s_x, 1)``, error row ``i`` with
``q_i = min(|d_i|*s_d, 1)``; device ``ij`` receives ``n_ij = sum_t a_jt*b_it`` pulses of sign
``-sign(x_j)*sign(d_i)``. With ``s_x*s_d = lr/(dw_min*bl)`` one gets
``E[n_ij] = lr*|x_j||d_i|/dw_min``, so for an ideal symmetric constant-step device
``E[dw] = -lr * d^T x`` exactly (unless a probability is clipped at 1). Update management
(aihwkit default) balances the two: ``s_x = sqrt(lr/(dw_min*bl) * max|d|/max|x|)``,
``s_d = lr/(dw_min*bl)/s_x``.

Example:
    >>> import torch
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
from pydantic import Field, model_validator

from aimc.config import BaseConfig

__all__ = ["PulsedDevice", "PULSED_PRESETS", "PulsedArray", "analog_sgd_step",
           "MixedPrecision", "TikiTakaV2"]


class PulsedDevice(BaseConfig):
    """Pulse response of one analog device kind; formulas in the module doc.

    Attributes:
        kind: ``constant_step``, ``soft_bounds``, ``linear_step`` or ``exp_step``.
        dw_min: nominal step per pulse (normalised weight units).
        w_max, w_min: weight bounds (normalised units).
        up_down: centred asymmetry, up step ``dw_min*(1+up_down)``, down ``dw_min*(1-up_down)``.
        dw_min_dtod: relative device-to-device spread of ``dw_min``.
        dw_min_std: relative cycle-to-cycle spread of each pulse's step.
        w_bound_dtod: relative device-to-device spread of both bounds.
        gamma_up, gamma_down: slopes of ``linear_step``.
        es_*: ``exp_step`` parameters (aihwkit names).
    """

    kind: Literal["constant_step", "soft_bounds", "linear_step", "exp_step"] = "constant_step"
    dw_min: float = Field(0.001, gt=0.0, le=1.0)
    w_max: float = Field(1.0, le=1e3)
    w_min: float = Field(-1.0, ge=-1e3)
    up_down: float = Field(0.0, gt=-1.0, lt=1.0)
    dw_min_dtod: float = Field(0.0, ge=0.0, le=10.0)
    dw_min_std: float = Field(0.0, ge=0.0, le=100.0)
    w_bound_dtod: float = Field(0.0, ge=0.0, le=10.0)
    gamma_up: float = Field(0.0, ge=0.0, le=1.0)
    gamma_down: float = Field(0.0, ge=0.0, le=1.0)
    es_A_up: float = 0.00081
    es_A_down: float = 0.36833
    es_gamma_up: float = Field(12.44625, ge=0.0, le=100.0)
    es_gamma_down: float = Field(12.78785, ge=0.0, le=100.0)
    es_a: float = 0.244
    es_b: float = 0.2425

    @model_validator(mode="after")
    def _check_bounds(self):
        if not self.w_min < self.w_max:
            raise ValueError(f"w_min ({self.w_min}) must be < w_max ({self.w_max})")
        if self.kind in ("soft_bounds", "linear_step") and not self.w_min < 0.0 < self.w_max:
            raise ValueError(f"kind {self.kind!r} needs w_min < 0 < w_max (got w_min={self.w_min}, w_max={self.w_max})")
        return self


PULSED_PRESETS: dict[str, PulsedDevice] = {
    # aihwkit IdealizedPresetDevice: Gokmen & Vlasov 2016 specs with 10000 states (Rasch,
    # Gokmen & Haensch, IEEE Design & Test 2019).
    "idealized": PulsedDevice(kind="constant_step", dw_min=0.0002, w_max=1.0, w_min=-1.0,
                              dw_min_dtod=0.3, dw_min_std=0.3, w_bound_dtod=0.3),
    # aihwkit GokmenVlasovPresetDevice: ~1200 states (Gokmen & Vlasov, Front. Neurosci. 2016).
    "gokmen_vlasov": PulsedDevice(kind="constant_step", dw_min=0.0016, w_max=1.0, w_min=-1.0,
                                  dw_min_dtod=0.3, dw_min_std=0.3, w_bound_dtod=0.3),
    # aihwkit ReRamSBPresetDevice: loose soft-bounds fit to Gong et al. 2018, symmetry point
    # calibrated to 0; aihwkit's w_max_dtod 0.24 / w_min_dtod 0.4 -> one value 0.24 here.
    "reram_sb": PulsedDevice(kind="soft_bounds", dw_min=0.002, w_max=1.25, w_min=-0.75,
                             dw_min_dtod=0.3, dw_min_std=3.75, w_bound_dtod=0.24),
    # aihwkit ReRamESPresetDevice (Gong et al. 2018); aihwkit's dw_min 0.00135 with one-sided
    # up_down 0.259359 (up 1.0x, down 0.741x) == centred dw_min 0.0011749, up_down 0.14900.
    "reram_es": PulsedDevice(kind="exp_step", dw_min=0.0011749, up_down=0.14900, w_max=1.0,
                             w_min=-1.0, dw_min_dtod=0.2, dw_min_std=5.0, w_bound_dtod=0.3,
                             es_a=-0.5, es_b=-0.5, es_gamma_up=5.0, es_gamma_down=5.0,
                             es_A_up=-1.18445, es_A_down=-0.081404),
    # aihwkit EcRamPresetDevice: Li-ion ECRAM, Tang et al. IEDM 2018, ~1000 states,
    # range shifted so the symmetry point is 0.
    "ecram": PulsedDevice(kind="linear_step", dw_min=0.002, w_max=1.1724, w_min=-0.8276,
                          gamma_up=0.1153, gamma_down=0.5085, dw_min_dtod=0.1,
                          dw_min_std=0.3, w_bound_dtod=0.05),
}


def _check_generator(generator) -> None:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")


class PulsedArray:
    """A crossbar of pulsed devices: weights ``w`` (out, in) plus per-device draws.

    Attributes:
        device: the :class:`PulsedDevice` config.
        w: weights (out, in), normalised units.
        dw_up, dw_down: per-device step scales (out, in).
        w_max_dev, w_min_dev: per-device bounds (out, in).
    """

    def __init__(self, device: PulsedDevice, w: torch.Tensor, dw_up: torch.Tensor,
                 dw_down: torch.Tensor, w_max_dev: torch.Tensor, w_min_dev: torch.Tensor):
        self.device, self.dw_up, self.dw_down = device, dw_up, dw_down
        self.w_max_dev, self.w_min_dev = w_max_dev, w_min_dev
        self.w = torch.minimum(torch.maximum(w, w_min_dev), w_max_dev)

    @classmethod
    def from_device(cls, device: PulsedDevice, shape: tuple[int, int], generator: torch.Generator,
                    w_init: torch.Tensor | None = None, dtype: torch.dtype = torch.float32) -> "PulsedArray":
        """Draw the device-to-device parameters; weights start at ``w_init`` (default 0), clipped."""
        _check_generator(generator)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"shape must be (out, in) with positive sizes, got {tuple(shape)}")
        d = device
        z = torch.randn((3, *shape), generator=generator, dtype=dtype)
        dw = d.dw_min * (1.0 + d.dw_min_dtod * z[0]).clamp(min=0.0)
        w_max = d.w_max * (1.0 + d.w_bound_dtod * z[1]).clamp(min=0.05)
        w_min = torch.minimum(d.w_min * (1.0 + d.w_bound_dtod * z[2]).clamp(min=0.05), w_max)
        w = torch.zeros(shape, dtype=dtype) if w_init is None else w_init.to(dtype).clone()
        if w.shape != tuple(shape):
            raise ValueError(f"w_init has shape {tuple(w.shape)}, expected {tuple(shape)}")
        return cls(d, w, dw * (1.0 + d.up_down), dw * (1.0 - d.up_down), w_max, w_min)

    def step_sizes(self, w: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Magnitudes (up, down) of one noise-free pulse at weights ``w`` (default: current)."""
        w = self.w if w is None else w
        d, up, dn = self.device, self.dw_up, self.dw_down
        if d.kind == "constant_step":
            return up.expand_as(w), dn.expand_as(w)
        if d.kind == "soft_bounds":
            return up * (1.0 - w / self.w_max_dev), dn * (1.0 - w / self.w_min_dev)
        if d.kind == "linear_step":
            return up * (1.0 - d.gamma_up * w / d.w_max), dn * (1.0 - d.gamma_down * w / d.w_min)
        z = 2.0 * d.es_a * w / (self.w_max_dev - self.w_min_dev) + d.es_b
        return (up * (1.0 - d.es_A_up * torch.exp(d.es_gamma_up * z)).clamp(min=0.0),
                dn * (1.0 - d.es_A_down * torch.exp(-d.es_gamma_down * z)).clamp(min=0.0))

    def symmetry_point(self, iters: int = 60) -> torch.Tensor:
        """Per-device weight where up and down steps are equal (bisection; a bound if none).

        For soft bounds it is ``(dw_down - dw_up)/(dw_down/w_min - dw_up/w_max)``, e.g.
        ``up_down`` itself for bounds ±1. A constant-step device has none: it returns 0 when
        symmetric, else the bound it drifts to.
        """
        if self.device.kind == "constant_step":  # every w (symmetric: take 0) or a bound
            zero = torch.zeros_like(self.w).clamp(self.w_min_dev, self.w_max_dev)
            return torch.where(self.dw_up > self.dw_down, self.w_max_dev,
                               torch.where(self.dw_up < self.dw_down, self.w_min_dev, zero))
        lo, hi = self.w_min_dev.clone(), self.w_max_dev.clone()
        for _ in range(iters):  # loop over bisection steps, vectorised over devices
            mid = 0.5 * (lo + hi)
            up, dn = self.step_sizes(mid)
            grow = up > dn  # net drift upward below the symmetry point
            lo, hi = torch.where(grow, mid, lo), torch.where(grow, hi, mid)
        return 0.5 * (lo + hi)

    def apply_pulses(self, n: torch.Tensor, generator: torch.Generator) -> None:
        """Apply ``n`` (out, in) signed pulse counts, one pulse at a time per device.

        The loop runs over pulse index ``k = 1 .. max|n|``, vectorised over devices.
        """
        _check_generator(generator)
        n = torch.as_tensor(n, device=self.w.device).round().to(torch.int64)
        if n.shape != self.w.shape:
            raise ValueError(f"n has shape {tuple(n.shape)}, expected {tuple(self.w.shape)}")
        sign, mag = torch.sign(n).to(self.w.dtype), n.abs()
        kmax = int(mag.max()) if mag.numel() else 0
        d = self.device
        for k in range(1, kmax + 1):
            active = mag >= k
            up, dn = self.step_sizes()
            dw = torch.where(sign > 0, up, -dn)
            if d.dw_min_std > 0:
                z = torch.randn(self.w.shape, generator=generator, dtype=self.w.dtype)
                dw = dw * (1.0 + d.dw_min_std * z)
            w = torch.where(active, self.w + dw, self.w)
            self.w = torch.minimum(torch.maximum(w, self.w_min_dev), self.w_max_dev)

    def pulse_counts(self, x: torch.Tensor, d: torch.Tensor, lr: float, bl: int,
                     generator: torch.Generator, update_management: bool = True) -> torch.Tensor:
        """Signed coincidence counts (B, out, in) of the stochastic pulse trains (module doc)."""
        _check_generator(generator)
        if not isinstance(bl, int) or bl < 1:
            raise ValueError(f"bl (pulse-train length) must be an int >= 1, got {bl!r}")
        if not lr >= 0:
            raise ValueError(f"lr must be >= 0, got {lr!r}")
        if x.ndim != 2 or d.ndim != 2 or x.shape[0] != d.shape[0] or \
                x.shape[1] != self.w.shape[1] or d.shape[1] != self.w.shape[0]:
            raise ValueError(f"x (B, in) and d (B, out) must match w {tuple(self.w.shape)}; "
                             f"got x {tuple(x.shape)}, d {tuple(d.shape)}")
        x, d = x.to(self.w.dtype), d.to(self.w.dtype)
        c = lr / (self.device.dw_min * bl)
        if update_management:
            xm = x.abs().amax(1, keepdim=True).clamp(min=1e-30)  # (B, 1)
            dm = d.abs().amax(1, keepdim=True).clamp(min=1e-30)
            s_x = torch.sqrt(c * dm / xm)
            s_d = c / s_x
        else:
            s_x = s_d = torch.full((x.shape[0], 1), c ** 0.5, dtype=x.dtype)
        p = (x.abs() * s_x).clamp(max=1.0)  # (B, in)
        q = (d.abs() * s_d).clamp(max=1.0)  # (B, out)
        a = (torch.rand((*p.shape, bl), generator=generator, dtype=x.dtype) < p[..., None]).to(x.dtype)
        b = (torch.rand((*q.shape, bl), generator=generator, dtype=x.dtype) < q[..., None]).to(x.dtype)
        if b.shape[1] * a.shape[1] * bl <= 1 << 20:  # small: broadcast-sum beats BLAS start-up
            n = (b[:, :, None, :] * a[:, None, :, :]).sum(-1)  # (B, out, in) coincidences
        else:
            n = torch.bmm(b, a.transpose(1, 2))  # (B, out, in) coincidences
        return -n * torch.sign(d)[:, :, None] * torch.sign(x)[:, None, :]

    def pulse_update(self, x: torch.Tensor, d: torch.Tensor, lr: float, bl: int,
                     generator: torch.Generator, update_management: bool = True) -> None:
        """Stochastic rank-one pulse update for a batch, samples applied in order.

        Args:
            x: inputs (B, in). d: errors (B, out). lr: learning rate. bl: pulse-train length.
            generator: randomness of the pulse trains and cycle-to-cycle noise.
            update_management: balance the two pulse probabilities (module doc).
        """
        n = self.pulse_counts(x, d, lr, bl, generator, update_management)
        for nb in n:  # samples are sequential in hardware
            self.apply_pulses(nb, generator)


def analog_sgd_step(array: PulsedArray, x: torch.Tensor, d: torch.Tensor, lr: float,
                    bl: int, generator: torch.Generator) -> None:
    """Plain analog SGD: one stochastic pulse update ``w += ~(-lr * d^T x)`` in place.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> arr = PulsedArray.from_device(PulsedDevice(dw_min=0.01), (1, 1), g)
        >>> analog_sgd_step(arr, torch.ones(1, 1), -torch.ones(1, 1), 0.1, 10, g)
        >>> float(arr.w) > 0
        True
    """
    array.pulse_update(x, d, lr, bl, generator)


class MixedPrecision:
    """Mixed-precision training (Nandakumar et al., Front. Neurosci. 14:406 (2020)).

    A digital accumulator ``chi += -lr * d^T x`` (summed over the batch); where
    ``|chi| >= dw_min`` the device receives ``p = trunc(chi/dw_min)`` pulses (the paper's
    ``floor(|chi|/eps)`` with sign) and ``chi -= p*dw_min`` (nominal step).

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> mp = MixedPrecision(PulsedArray.from_device(PulsedDevice(dw_min=0.1), (1, 1), g))
        >>> mp.step(torch.ones(1, 1), -torch.ones(1, 1), 0.25, g)
        >>> round(float(mp.array.w), 6), round(float(mp.chi), 6)
        (0.2, 0.05)
    """

    def __init__(self, array: PulsedArray):
        self.array = array
        self.chi = torch.zeros_like(array.w)

    def step(self, x: torch.Tensor, d: torch.Tensor, lr: float, generator: torch.Generator) -> None:
        """Accumulate ``-lr * d^T x`` and write the whole-step part as pulses."""
        self.chi = self.chi - lr * (d.to(self.chi.dtype).T @ x.to(self.chi.dtype))
        dw = self.array.device.dw_min
        p = torch.trunc(self.chi / dw)
        self.array.apply_pulses(p, generator)
        self.chi = self.chi - p * dw


class TikiTakaV2:
    """Tiki-Taka v2 (Gokmen & Haensch, Front. Neurosci. 14:103 (2020); Gokmen, Front. Artif.
    Intell. 4:699148 (2021); aihwkit ``BufferedTransferCompound``).

    Gradients go as stochastic pulses to a fast array ``A``. Every ``transfer_every``
    updates one column ``k`` (cyclic) of ``A`` is read (``v = A[:, k] - ref[:, k] +
    read_noise_std*z``) and accumulated digitally, ``H[:, k] += transfer_lr * v``; where
    ``|H| >= thres*dw_min_C`` the slow array ``C`` gets ``n = trunc(H/dw_min_C)`` pulses
    (at most ``max_pulses``) and ``H -= n*dw_min_C``. The weight is ``C + gamma*(A - ref)``
    (``gamma = 0`` in TTv2). ``ref`` is ``A``'s symmetry point when ``zero_shift`` (a
    reference array, Kim et al. arXiv:1907.10228 (2019)), else 0 (always 0 for
    ``constant_step``, which has no symmetry point); ``A`` starts at ``ref``.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> dev = PulsedDevice(dw_min=0.01)
        >>> tt = TikiTakaV2(PulsedArray.from_device(dev, (2, 2), g),
        ...                 PulsedArray.from_device(dev, (2, 2), g), transfer_every=1)
        >>> tt.step(torch.ones(4, 2), torch.ones(4, 2), g)
        >>> tuple(tt.weight.shape)
        (2, 2)
    """

    def __init__(self, fast: PulsedArray, slow: PulsedArray, fast_lr: float = 0.1,
                 transfer_lr: float = 1.0, transfer_every: int = 1, bl: int = 31,
                 thres: float = 1.0, max_pulses: int | None = None, read_noise_std: float = 0.0,
                 gamma: float = 0.0, zero_shift: bool = True):
        if fast.w.shape != slow.w.shape:
            raise ValueError(f"fast and slow arrays differ in shape: {tuple(fast.w.shape)} vs {tuple(slow.w.shape)}")
        for name, v, ok in (("fast_lr", fast_lr, fast_lr > 0), ("transfer_lr", transfer_lr, transfer_lr > 0),
                            ("transfer_every", transfer_every, isinstance(transfer_every, int) and transfer_every >= 1),
                            ("bl", bl, isinstance(bl, int) and bl >= 1), ("thres", thres, thres > 0),
                            ("max_pulses", max_pulses, max_pulses is None or max_pulses >= 1),
                            ("read_noise_std", read_noise_std, read_noise_std >= 0)):
            if not ok:
                raise ValueError(f"{name} out of range: got {v!r}")
        self.A, self.C = fast, slow
        self.fast_lr, self.transfer_lr, self.transfer_every, self.bl = fast_lr, transfer_lr, transfer_every, bl
        self.thres, self.max_pulses, self.read_noise_std, self.gamma = thres, max_pulses, read_noise_std, gamma
        shift = zero_shift and fast.device.kind != "constant_step"  # constant step: no SP
        self.ref = fast.symmetry_point() if shift else torch.zeros_like(fast.w)
        self.A.w = self.ref.clone()
        self.H = torch.zeros_like(slow.w)
        self.n_updates, self.next_col = 0, 0

    @property
    def weight(self) -> torch.Tensor:
        """Effective weight ``C + gamma*(A - ref)`` (out, in)."""
        return self.C.w + self.gamma * (self.A.w - self.ref) if self.gamma else self.C.w

    def transfer(self, generator: torch.Generator) -> torch.Tensor:
        """Read the next column of ``A`` into ``H`` and write whole steps to ``C``; returns the
        signed pulse counts written (out, in)."""
        k = self.next_col
        v = self.A.w[:, k] - self.ref[:, k]
        if self.read_noise_std > 0:
            v = v + self.read_noise_std * torch.randn(v.shape, generator=generator, dtype=v.dtype)
        self.H[:, k] += self.transfer_lr * v
        dw = self.C.device.dw_min
        hk = self.H[:, k]
        nk = torch.where(hk.abs() >= self.thres * dw, torch.trunc(hk / dw), torch.zeros_like(hk))
        if self.max_pulses is not None:
            nk = nk.clamp(-self.max_pulses, self.max_pulses)
        n = torch.zeros_like(self.H)
        n[:, k] = nk
        self.C.apply_pulses(n, generator)
        self.H[:, k] -= nk * dw
        self.next_col = (k + 1) % self.H.shape[1]
        return n

    def step(self, x: torch.Tensor, d: torch.Tensor, generator: torch.Generator) -> None:
        """Pulse the gradient ``-fast_lr * d^T x`` onto ``A``; transfer when due."""
        self.A.pulse_update(x, d, self.fast_lr, self.bl, generator)
        self.n_updates += 1
        if self.n_updates % self.transfer_every == 0:
            self.transfer(generator)
