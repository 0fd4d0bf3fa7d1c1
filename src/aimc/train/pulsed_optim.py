"""On-chip optimizers on :class:`~aimc.train.pulsed.PulsedArray`: analog SGD, mixed
precision, Tiki-Taka v2 and chopped Tiki-Taka v2 (c-TTv2).

Every update here is done by pulses (``mode="fast"`` or ``"exact"``, see
:meth:`~aimc.train.pulsed.PulsedArray.pulse_update`); digital state (accumulators,
buffers, choppers) is stated in each docstring.

Example:
    >>> import torch
    >>> from aimc.physics.pulsed import PULSED_PRESETS
    >>> from aimc.train.pulsed import PulsedArray
    >>> g = torch.Generator().manual_seed(0)
    >>> dev = PULSED_PRESETS["reram_sb"]
    >>> ctt = ChoppedTikiTakaV2(PulsedArray.from_device(dev, (4, 3), g),
    ...                         PulsedArray.from_device(dev, (4, 3), g), n_cols=3)
    >>> ctt.step(torch.randn(8, 3, generator=g), torch.randn(8, 4, generator=g), g)
    >>> tuple(ctt.weight.shape), sorted(set(ctt.chop.tolist())) in ([-1.0], [1.0], [-1.0, 1.0])
    ((4, 3), True)
"""
from __future__ import annotations

import torch

from aimc.physics.pulsed import PulsedDevice
from aimc.train.pulsed import Mode, PulsedArray, _check_generator, _check_mode

__all__ = ["analog_sgd_step", "MixedPrecision", "TikiTakaV2", "ChoppedTikiTakaV2"]


def analog_sgd_step(array: PulsedArray, x: torch.Tensor, d: torch.Tensor, lr: float,
                    bl: int, generator: torch.Generator, mode: Mode = "fast") -> None:
    """Plain analog SGD: one stochastic pulse update ``w += ~(-lr * d^T x)`` in place.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> arr = PulsedArray.from_device(PulsedDevice(dw_min=0.01), (1, 1), g)
        >>> analog_sgd_step(arr, torch.ones(1, 1), -torch.ones(1, 1), 0.1, 10, g)
        >>> float(arr.w) > 0
        True
    """
    array.pulse_update(x, d, lr, bl, generator, mode=mode)


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

    def __init__(self, array: PulsedArray, mode: Mode = "fast"):
        _check_mode(mode)
        self.array, self.mode = array, mode
        self.chi = torch.zeros_like(array.w)

    def step(self, x: torch.Tensor, d: torch.Tensor, lr: float, generator: torch.Generator) -> None:
        """Accumulate ``-lr * d^T x`` and write the whole-step part as pulses."""
        self.chi = torch.addmm(self.chi, d.to(self.chi.dtype).T, x.to(self.chi.dtype), alpha=-lr)
        dw = self.array.device.dw_min
        p = self.chi.div(dw).trunc_()
        if self.mode == "exact":
            self.array.apply_pulses(p, generator, mode="exact")
        else:  # p is already whole: straight to the one-pass response
            self.array.apply_counts(p.relu(), p.neg().relu_(), generator)
        self.chi = self.chi.sub_(p, alpha=dw)


class TikiTakaV2:
    """Tiki-Taka v2 (Gokmen & Haensch, Front. Neurosci. 14:103 (2020); Gokmen, Front. Artif.
    Intell. 4:699148 (2021); aihwkit ``BufferedTransferCompound``).

    Gradients go as stochastic pulses to a fast array ``A`` (learning rate ``fast_lr``).
    Every ``transfer_every`` updates the next ``n_cols`` columns ``k`` (cyclic) of ``A`` are
    read (``v = A[:, k] - ref[:, k] + read_noise_std*z``) and accumulated digitally,
    ``H[:, k] += transfer_lr * v``; where ``|H| >= thres*dw_min_C`` the slow array ``C``
    gets ``n = trunc(H/dw_min_C)`` pulses (at most ``max_pulses``) and ``H -= n*dw_min_C``.
    The weight is ``C + gamma*(A - ref)`` (``gamma = 0`` in TTv2). ``ref`` is ``A``'s
    symmetry point when ``zero_shift`` (a reference array, Kim et al. arXiv:1907.10228
    (2019)), else 0 (always 0 for ``constant_step``, which has no symmetry point); ``A``
    starts at ``ref``.

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
                 gamma: float = 0.0, zero_shift: bool = True, n_cols: int = 1, mode: Mode = "fast"):
        if fast.w.shape != slow.w.shape:
            raise ValueError(f"fast and slow arrays differ in shape: {tuple(fast.w.shape)} vs {tuple(slow.w.shape)}")
        n_in = fast.w.shape[1]
        for name, v, ok in (("fast_lr", fast_lr, fast_lr > 0), ("transfer_lr", transfer_lr, transfer_lr > 0),
                            ("transfer_every", transfer_every, isinstance(transfer_every, int) and transfer_every >= 1),
                            ("bl", bl, isinstance(bl, int) and bl >= 1), ("thres", thres, thres > 0),
                            ("max_pulses", max_pulses, max_pulses is None or max_pulses >= 1),
                            ("read_noise_std", read_noise_std, read_noise_std >= 0),
                            ("n_cols", n_cols, isinstance(n_cols, int) and 1 <= n_cols <= n_in)):
            if not ok:
                raise ValueError(f"{name} out of range: got {v!r}")
        _check_mode(mode)
        self.A, self.C, self.mode = fast, slow, mode
        self.fast_lr, self.transfer_lr, self.transfer_every, self.bl = fast_lr, transfer_lr, transfer_every, bl
        self.thres, self.max_pulses, self.read_noise_std, self.gamma = thres, max_pulses, read_noise_std, gamma
        self.n_cols = n_cols
        shift = zero_shift and fast.device.kind != "constant_step"  # constant step: no SP
        self.ref = fast.symmetry_point() if shift else torch.zeros_like(fast.w)
        self.A.w = self.ref.clone()
        self.H = torch.zeros_like(slow.w)
        self.n_updates, self.next_col = 0, 0

    @property
    def weight(self) -> torch.Tensor:
        """Effective weight ``C + gamma*(A - ref)`` (out, in)."""
        return self.C.w + self.gamma * (self.A.w - self.ref) if self.gamma else self.C.w

    def _read(self, idx, generator: torch.Generator) -> torch.Tensor:
        """Digital read of ``A``'s columns ``idx`` relative to the reference (out, len(idx))."""
        v = self.A.w[:, idx] - self.ref[:, idx]
        if self.read_noise_std > 0:
            v = v + self.read_noise_std * torch.randn(v.shape, generator=generator, dtype=v.dtype, device=v.device)
        return v

    def _after_write(self, idx, nk: torch.Tensor, generator: torch.Generator) -> None:
        """Buffer bookkeeping after ``nk`` pulses were written to ``C[:, idx]``."""
        hk = self.H[:, idx].sub_(nk, alpha=self.C.device.dw_min)
        if not isinstance(idx, slice):  # a wrapped index gave a copy, not a view
            self.H[:, idx] = hk

    def transfer(self, generator: torch.Generator) -> torch.Tensor:
        """Read the next ``n_cols`` columns of ``A`` into ``H`` and write whole steps to ``C``;
        returns the signed pulse counts written (out, in)."""
        n_in, k = self.H.shape[1], self.next_col
        idx = slice(k, k + self.n_cols) if k + self.n_cols <= n_in else \
            (k + torch.arange(self.n_cols, device=self.H.device)) % n_in
        hk = self.H[:, idx].add_(self._read(idx, generator), alpha=self.transfer_lr)  # (out, n_cols)
        if not isinstance(idx, slice):  # a wrapped index gave a copy, not a view
            self.H[:, idx] = hk
        dw = self.C.device.dw_min
        nk = hk.div(dw).trunc_()  # 0 where |H| < dw_min: thres <= 1 needs no mask
        if self.thres > 1.0:
            nk = nk.masked_fill_(hk.abs() < self.thres * dw, 0.0)
        if self.max_pulses is not None:
            nk = nk.clamp_(-self.max_pulses, self.max_pulses)
        n = torch.zeros_like(self.H)
        n[:, idx] = nk
        if self.mode == "exact":
            self.C.apply_pulses(n, generator, mode="exact")
        else:
            self.C.apply_counts(nk.relu(), nk.neg().relu_(), generator, cols=idx)
        self._after_write(idx, nk, generator)
        self.next_col = (self.next_col + self.n_cols) % n_in
        return n

    def _fast_input(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def pulse_args(self, x: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """``(x, d, lr)`` of the pulse update onto ``A`` (for an update of several ``A`` at once
        by a :class:`~aimc.train.pulsed_group.PulsedGroup`, followed by :meth:`after_pulse`)."""
        return self._fast_input(x), d, self.fast_lr

    def step(self, x: torch.Tensor, d: torch.Tensor, generator: torch.Generator) -> None:
        """Pulse the gradient ``-fast_lr * d^T x`` onto ``A``; transfer when due."""
        self.A.pulse_update(*self.pulse_args(x, d), self.bl, generator, mode=self.mode)
        self.after_pulse(generator)

    def after_pulse(self, generator: torch.Generator) -> None:
        """Count one update of ``A``; transfer when due."""
        self.n_updates += 1
        if self.n_updates % self.transfer_every == 0:
            self.transfer(generator)


class ChoppedTikiTakaV2(TikiTakaV2):
    """Chopped Tiki-Taka v2, c-TTv2 (Rasch, Carta, Fagbohungbe & Gokmen, "Fast and robust
    analog in-memory deep neural network training", Nat. Commun. 15, 7133 (2024),
    arXiv:2302.04154; aihwkit ``ChoppedTransferCompound``).

    As :class:`TikiTakaV2`, with a sign ``c_j in {-1, +1}`` per input (column), all +1 at
    the start:

    * update: ``A += ~(-fast_lr * d^T (c * x))`` (the inputs are chopped, so the gradient
      is written onto ``A`` with the column's sign);
    * transfer of column ``k``: ``H[:, k] += transfer_lr * c_k * (A[:, k] - ref[:, k] +
      read_noise_std*z)`` (the sign is recovered after the read), ``n = trunc(H/dw_min_C)``
      where ``|H| >= thres*dw_min_C`` (at most ``max_pulses``) pulses to ``C``; then
      ``H[:, k] = 0`` where pulses were sent (``forget_buffer``, aihwkit's default) or
      ``H -= n*dw_min_C``;
    * after its read, column ``k``'s chopper flips, ``c_k <- -c_k``: with probability
      ``in_chop_prob`` (``in_chop_random``), or regularly on every
      ``round(1/in_chop_prob)``-th read of that column.

    A constant offset of ``A`` (a wrong reference, or the drift towards the device's
    symmetry point) is read with alternating signs and cancels in ``H``; the gradient does
    not. The weight is ``C + gamma*c*(A - ref)`` (``gamma = 0`` as in the paper).
    """

    def __init__(self, fast: PulsedArray, slow: PulsedArray, in_chop_prob: float = 0.1,
                 in_chop_random: bool = True, forget_buffer: bool = True, **kwargs):
        if not 0.0 <= in_chop_prob <= 1.0:
            raise ValueError(f"in_chop_prob must be in [0, 1], got {in_chop_prob!r}")
        super().__init__(fast, slow, **kwargs)
        self.in_chop_prob, self.in_chop_random, self.forget_buffer = in_chop_prob, in_chop_random, forget_buffer
        self.chop = torch.ones(fast.w.shape[1], dtype=fast.w.dtype, device=fast.w.device)  # (in,)
        self.reads = torch.zeros(fast.w.shape[1], dtype=torch.int64, device=fast.w.device)

    @property
    def weight(self) -> torch.Tensor:
        """Effective weight ``C + gamma*c*(A - ref)`` (out, in)."""
        return self.C.w + self.gamma * self.chop * (self.A.w - self.ref) if self.gamma else self.C.w

    def _fast_input(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.chop

    def _read(self, idx, generator: torch.Generator) -> torch.Tensor:
        return super()._read(idx, generator) * self.chop[idx]

    def _after_write(self, idx, nk: torch.Tensor, generator: torch.Generator) -> None:
        if self.forget_buffer:
            hk = self.H[:, idx].masked_fill_(nk != 0, 0.0)
            if not isinstance(idx, slice):  # a wrapped index gave a copy, not a view
                self.H[:, idx] = hk
        else:
            super()._after_write(idx, nk, generator)
        self.reads[idx] += 1
        p = self.in_chop_prob
        if self.in_chop_random:
            flip = torch.rand(nk.shape[1], generator=generator, device=nk.device) < p
        else:
            flip = (self.reads[idx] % max(round(1.0 / p), 1) == 0) if p > 0 else \
                torch.zeros(nk.shape[1], dtype=torch.bool, device=nk.device)
        c = self.chop[idx]
        self.chop[idx] = torch.where(flip, -c, c)
