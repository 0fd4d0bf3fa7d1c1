"""The on-chip trained MLP (:class:`AnalogMLP`) whose weights live on pulsed device arrays.

Each linear layer ``y = s * w x + b`` keeps its weight ``w`` (out, in) on
:class:`~aimc.train.pulsed.PulsedArray` s (one per weight matrix, or ``A`` and ``C`` for
the transfer methods), in normalised device units, times a fixed digital scale ``s =
weight_range / sqrt(fan_in)`` (the weight that device value 1 stands for). The bias is
digital and trained by plain SGD (aihwkit's ``digital_bias`` default). Training:

* forward and backward MVMs read the device weights exactly (aihwkit's perfect I/O),
  optionally with additive Gaussian output noise ``out_noise`` (in units of the layer's
  largest output). The chip's inference non-idealities (DAC/ADC, read noise, drift) are
  simulated by ``aimc.nn``/HAT; here they would slow training and blur the comparison of
  update rules, which is what this module is about;
* backward computes ``d = dL/dy`` per layer (cross-entropy, mean over the batch);
* update by pulses only, with learning rate ``lr/s`` in device units, by ``method``:
  ``analog-sgd`` (:func:`~aimc.train.pulsed_optim.analog_sgd_step`), ``mixed-precision``
  (:class:`~aimc.train.pulsed_optim.MixedPrecision`), ``tiki-taka-v2``
  (:class:`~aimc.train.pulsed_optim.TikiTakaV2`) or ``c-ttv2``
  (:class:`~aimc.train.pulsed_optim.ChoppedTikiTakaV2`); the pulse update is the fast
  mini-batch mode of :meth:`~aimc.train.pulsed.PulsedArray.pulse_update` unless
  ``mode="exact"``.

:func:`aimc.train.onchip.fit_onchip` trains it on a chip's pulsed device: the ``pulsed:``
section of its :class:`~aimc.chips.ChipSpec` (:func:`device_for`); :class:`OnChipConfig`
holds its hyper-parameters.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Union

import torch
from pydantic import Field
from torch import nn

from aimc import chips
from aimc.chips import ChipSpec
from aimc.config import BaseConfig, ConfigError
from aimc.physics.pulsed import PulsedDevice
from aimc.tiles.periphery import perfect_io_read
from aimc.train.pulsed import PulsedArray
from aimc.train.pulsed_group import PulsedGroup
from aimc.train.pulsed_optim import ChoppedTikiTakaV2, MixedPrecision, TikiTakaV2

__all__ = ["METHODS", "OnChipConfig", "AnalogMLP", "ChipLike", "device_for"]

METHODS = ("analog-sgd", "mixed-precision", "tiki-taka-v2", "c-ttv2")

#: a chip preset name, a chip YAML path or a :class:`~aimc.chips.ChipSpec`.
ChipLike = Union[str, Path, ChipSpec]


def device_for(chip: ChipLike) -> PulsedDevice:
    """The pulsed device of a chip: its spec's ``pulsed:`` section.

    Args:
        chip: a preset name, a YAML path or a :class:`~aimc.chips.ChipSpec`.

    Raises:
        aimc.config.ConfigError: unknown chip or bad file (named), or a chip without a
            ``pulsed`` section (named, with the presets that have one).

    Example:
        >>> device_for("ecram").kind
        'linear_step'
        >>> device_for("pcm-hermes")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        aimc.config.ConfigError: chip 'pcm-hermes' cannot be trained on-chip: its spec has no 'pulsed' section ...
    """
    spec = chips.load(chip)
    if spec.pulsed is None:
        have = [n for n in chips.names() if chips.load(n).pulsed is not None]
        raise ConfigError(f"chip {spec.name!r} cannot be trained on-chip: its spec has no 'pulsed' section (the "
                          f"devices' pulse response, aimc.physics.PulsedDevice); add one to its YAML or use a chip "
                          f"that has one: {', '.join(have)}")
    return spec.pulsed


class OnChipConfig(BaseConfig):
    """Hyper-parameters of on-chip training (defaults: the settings of the README table).

    Attributes:
        method: update rule, one of :data:`METHODS`.
        hidden: hidden layer widths.
        epochs: passes over the data. batch_size: samples per pulse update.
        lr: learning rate in weight units (None: 0.1 for every method).
        bl: pulse-train length of the stochastic update.
        weight_range: the weight that device value 1 stands for, times ``sqrt(fan_in)``.
        fast_lr: TT/c-TTv2 learning rate onto ``A`` (weight units; None: ``lr``).
        transfer_lr: TT/c-TTv2 scale of each read of ``A`` into ``H``.
        transfer_every: TT/c-TTv2 updates between transfers; n_cols: columns read per transfer.
        in_chop_prob: c-TTv2 chopper flip probability per column read.
        out_noise: forward/backward output noise (relative to each sample's max output).
        schedule: ``constant`` or ``cosine`` (lr and fast_lr times ``(1 + cos(pi*e/epochs))/2``
            in epoch ``e = 0..epochs-1``).
        mode: pulse update ``fast`` (default) or ``exact`` (slow reference).
    """

    method: Literal["analog-sgd", "mixed-precision", "tiki-taka-v2", "c-ttv2"] = "tiki-taka-v2"
    hidden: tuple[int, ...] = (64,)
    epochs: int = Field(30, ge=1, le=100_000)
    batch_size: int = Field(16, ge=1)
    lr: float | None = Field(None, gt=0.0, le=100.0)
    bl: int = Field(31, ge=1, le=10_000)
    weight_range: float = Field(4.0, gt=0.0, le=1e3)
    fast_lr: float | None = Field(None, gt=0.0, le=100.0)
    transfer_lr: float = Field(0.25, gt=0.0, le=1e3)
    transfer_every: int = Field(4, ge=1)
    n_cols: int = Field(8, ge=1)
    in_chop_prob: float = Field(0.1, ge=0.0, le=1.0)
    out_noise: float = Field(0.0, ge=0.0, le=10.0)
    schedule: Literal["constant", "cosine"] = "constant"
    mode: Literal["fast", "exact"] = "fast"


class _Layer:
    """One analog linear layer: pulsed weight storage, digital scale and bias."""

    def __init__(self, n_in: int, n_out: int, dev: PulsedDevice, cfg: OnChipConfig, gen: torch.Generator):
        bound = n_in ** -0.5
        self.scale = cfg.weight_range * bound
        w0 = (2.0 * torch.rand(n_out, n_in, generator=gen, device=gen.device) - 1.0) * bound / self.scale  # init
        self.b = (2.0 * torch.rand(n_out, generator=gen, device=gen.device) - 1.0) * bound
        self.cfg = cfg
        arr = PulsedArray.from_device(dev, (n_out, n_in), gen, w_init=w0)
        self.opt: MixedPrecision | TikiTakaV2 | None
        if cfg.method in ("analog-sgd", "mixed-precision"):
            self.array = arr
            self.opt = MixedPrecision(arr, mode=cfg.mode) if cfg.method == "mixed-precision" else None
        else:
            fast = PulsedArray.from_device(dev, (n_out, n_in), gen)
            lr = cfg.fast_lr if cfg.fast_lr is not None else (cfg.lr or 0.1)
            kw = dict(fast_lr=lr / self.scale, transfer_lr=cfg.transfer_lr, transfer_every=cfg.transfer_every,
                      bl=cfg.bl, n_cols=min(cfg.n_cols, n_in), mode=cfg.mode)
            self.opt = (ChoppedTikiTakaV2(fast, arr, in_chop_prob=cfg.in_chop_prob, **kw) if cfg.method == "c-ttv2"
                        else TikiTakaV2(fast, arr, **kw))
            self.array = arr
        self.base_fast_lr = getattr(self.opt, "fast_lr", None)

    def set_lr_factor(self, f: float) -> None:
        """Scale the transfer methods' ``fast_lr`` by ``f`` (learning-rate schedule)."""
        if self.base_fast_lr is not None and isinstance(self.opt, TikiTakaV2):
            self.opt.fast_lr = self.base_fast_lr * f

    @property
    def pulsed(self) -> PulsedArray:
        """The array the gradient is pulsed onto (``A`` for the transfer methods)."""
        return self.opt.A if isinstance(self.opt, TikiTakaV2) else self.array

    @property
    def weight(self) -> torch.Tensor:
        """Weight in model units, ``scale * w`` (out, in)."""
        w = self.opt.weight if isinstance(self.opt, TikiTakaV2) else self.array.w
        return self.scale * w

    def update(self, x: torch.Tensor, d: torch.Tensor, lr: float, gen: torch.Generator) -> None:
        """Pulse update with the layer input ``x`` (B, in) and error ``d`` (B, out)."""
        if self.opt is None:
            self.array.pulse_update(x, d, lr / self.scale, self.cfg.bl, gen, mode=self.cfg.mode)
        elif isinstance(self.opt, MixedPrecision):
            self.opt.step(x, d, lr / self.scale, gen)
        else:
            self.opt.step(x, d, gen)
        self.update_bias(d, lr)

    def pulse_args(self, x: torch.Tensor, d: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor, float]:
        """``(x, d, lr)`` in device units of the pulse update (analog SGD and the transfer methods)."""
        return self.opt.pulse_args(x, d) if isinstance(self.opt, TikiTakaV2) else (x, d, lr / self.scale)

    def update_bias(self, d: torch.Tensor, lr: float) -> None:
        """Digital SGD step of the bias."""
        self.b.sub_(d.sum(0), alpha=lr)


class AnalogMLP:
    """MLP ``in -> hidden... -> out`` (ReLU) with pulsed analog weights (module doc).

    In fast mode the pulse updates of all layers (analog SGD; ``A`` of the transfer
    methods) run as one :class:`~aimc.train.pulsed_group.PulsedGroup` update after the
    backward pass (every layer's error is computed from the weights before the step, as
    when the layers are updated one by one). Training runs under ``torch.inference_mode()``
    (nothing here needs autograd); the state is left as ordinary tensors afterwards.

    Args:
        n_in, n_out: input and output sizes.
        chip: the chip whose ``pulsed`` device holds the weights (:func:`device_for`: a
            preset name, YAML path or :class:`~aimc.chips.ChipSpec`), or a
            :class:`~aimc.physics.pulsed.PulsedDevice` itself.
        cfg: hyper-parameters. seed: seed of the initial weights, device draws and pulses.
        torch_device: where every tensor lives (``"cpu"``, ``"cuda"``, ...); inputs are
            expected there.

    Example:
        >>> import torch
        >>> net = AnalogMLP(4, 3, "ecram", OnChipConfig(hidden=(5,)), seed=0)
        >>> net.device.kind, net.logits(torch.zeros(2, 4)).shape
        ('linear_step', torch.Size([2, 3]))
    """

    def __init__(self, n_in: int, n_out: int, chip: ChipLike | PulsedDevice, cfg: OnChipConfig, seed: int = 0,
                 torch_device: str | torch.device = "cpu"):
        device = chip if isinstance(chip, PulsedDevice) else device_for(chip)
        self.cfg, self.device, self.torch_device = cfg, device, torch.device(torch_device)
        gen = torch.Generator(device=self.torch_device).manual_seed(int(seed))
        sizes = (n_in, *cfg.hidden, n_out)
        self.layers = [_Layer(a, b, device, cfg, gen) for a, b in zip(sizes[:-1], sizes[1:])]
        self.gen = torch.Generator(device=self.torch_device).manual_seed(int(seed) + 1)  # pulses, noise
        grouped = cfg.mode == "fast" and cfg.method != "mixed-precision"
        self.group = PulsedGroup([layer.pulsed for layer in self.layers]) if grouped else None

    def _mvm(self, h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        """``h @ w`` with the output noise (relative to its largest output), then ``+ b``:
        the tiles' perfect-periphery read (:func:`aimc.tiles.periphery.perfect_io_read`)."""
        return perfect_io_read(h, w, self.cfg.out_noise, self.gen, b)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass (B, in) -> (B, out), weights read exactly (no output noise)."""
        h = x.flatten(1)
        for i, layer in enumerate(self.layers):
            h = h @ layer.weight.T + layer.b
            h = h.relu() if i < len(self.layers) - 1 else h
        return h

    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Fraction of ``x`` classified as ``y``."""
        return float((self.logits(x).argmax(1) == y).float().mean())

    def train_step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> float:
        """Forward, backward and pulse update on one mini-batch; returns the mean loss."""
        with torch.inference_mode():
            loss = float(self._train_step(x, y, lr))
        self._own_state()
        return loss

    def _own_state(self) -> None:
        """Training runs under ``torch.inference_mode()`` (no autograd bookkeeping: ~15 %
        less time per small tensor operation); state tensors it replaced are inference
        tensors, which cannot be changed in place outside that mode. Clone those into
        ordinary tensors."""
        for layer in self.layers:
            for obj in (layer, layer.opt, layer.array, getattr(layer.opt, "A", None)):
                for name, v in vars(obj).items() if obj is not None else ():
                    if isinstance(v, torch.Tensor) and v.is_inference():
                        setattr(obj, name, v.clone())

    def _train_step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
        """:meth:`train_step` returning the loss as a 0-d tensor (no host synchronisation)."""
        hs, ws = [x], [layer.weight for layer in self.layers]
        for i, layer in enumerate(self.layers):
            z = self._mvm(hs[-1], ws[i].T, layer.b)
            hs.append(z.relu() if i < len(self.layers) - 1 else z)
        logp = hs[-1].log_softmax(1)
        target = y[:, None]
        loss = logp.gather(1, target).mean().neg()
        d = logp.exp().scatter_add_(1, target, torch.full(target.shape, -1.0, dtype=logp.dtype, device=logp.device))
        d = d.div_(len(y))  # dL/dz of the mean cross-entropy (B, out)
        pulses = []
        for i in range(len(self.layers) - 1, -1, -1):
            d_prev = self._mvm(d, ws[i]).mul_(hs[i] > 0) if i > 0 else None  # backward MVM
            layer = self.layers[i]
            if self.group is None:
                layer.update(hs[i], d, lr, self.gen)
            else:
                pulses.append(layer.pulse_args(hs[i], d, lr))
                layer.update_bias(d, lr)
            if d_prev is not None:  # None after the first layer (the loop ends)
                d = d_prev
        if self.group is not None:  # all layers' pulses in one pass
            xs, ds, lrs = zip(*reversed(pulses))
            self.group.pulse_update(xs, ds, lrs, self.cfg.bl, self.gen)
            for layer in self.layers:
                if isinstance(layer.opt, TikiTakaV2):
                    layer.opt.after_pulse(self.gen)
        return loss

    def train_epoch(self, x: torch.Tensor, y: torch.Tensor, lr: float, order: torch.Tensor,
                    factor: float = 1.0) -> float:
        """One pass in the order ``order`` at ``lr*factor`` (and ``fast_lr*factor``); returns
        the mean training loss."""
        x, bs = x.flatten(1), self.cfg.batch_size
        total: torch.Tensor | float = 0.0
        lr = lr * factor
        for layer in self.layers:
            layer.set_lr_factor(factor)
        with torch.inference_mode():  # see _own_state
            for i in range(0, len(x), bs):
                idx = order[i: i + bs]
                total = total + self._train_step(x[idx], y[idx], lr) * len(idx)
            total = float(total)
        self._own_state()
        return total / len(x)

    def to_torch(self) -> nn.Sequential:
        """A plain ``nn.Sequential`` MLP holding the current analog weights (e.g. to save)."""
        mods: list[nn.Module] = [nn.Flatten()]
        for i, layer in enumerate(self.layers):
            lin = nn.Linear(layer.weight.shape[1], layer.weight.shape[0])
            with torch.no_grad():
                lin.weight.copy_(layer.weight)
                lin.bias.copy_(layer.b)
            mods += [lin] + ([nn.ReLU()] if i < len(self.layers) - 1 else [])
        return nn.Sequential(*mods).eval()
