"""On-chip analog training of an MLP whose weights live on pulsed device arrays.

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

Chip preset -> pulsed device (:data:`CHIP_DEVICES`; presets in :data:`~aimc.train.pulsed.PULSED_PRESETS`):

============  ==========  ===========================================================
chip          device      response (normalised units)
============  ==========  ===========================================================
rram-1t1r     reram_sb    soft bounds in [-0.75, 1.25], dw_min 0.002 (~1000 steps),
                          cycle-to-cycle 375 %, device-to-device 30 % (steps), 24 %
                          (bounds); aihwkit ``ReRamSBPresetDevice`` (Gong et al. 2018)
ecram         ecram       linear step, gamma_up 0.115, gamma_down 0.509 (down steps
                          ~2x larger at the top), dw_min 0.002 (~1000 steps), c2c 30 %,
                          d2d 10 %; aihwkit ``EcRamPresetDevice`` (Tang et al. 2018)
============  ==========  ===========================================================

Both are asymmetric: under zero-mean updates the weights drift to the device's symmetry
point, which is what hurts plain analog SGD and what Tiki-Taka uses.

Example:
    >>> import torch
    >>> from aimc.train.onchip import fit_onchip
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(128, 6, generator=g); y = (x[:, 0] > 0).long()
    >>> res = fit_onchip(x, y, chip="ecram", method="analog-sgd", hidden=8, epochs=2, lr=0.1, seed=0)
    >>> len(res.history), res.model.accuracy(x, y) > 0.5
    (2, True)
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from aimc.config import BaseConfig
from aimc.train.pulsed import PULSED_PRESETS, PulsedArray, PulsedDevice
from aimc.train.pulsed_group import PulsedGroup
from aimc.train.pulsed_optim import ChoppedTikiTakaV2, MixedPrecision, TikiTakaV2

__all__ = ["CHIP_DEVICES", "METHODS", "OnChipConfig", "AnalogMLP", "OnChipResult", "fit_onchip",
           "digital_mlp", "digital_epoch", "fit_digital", "device_for", "load_mlp"]

#: chip preset name -> :data:`~aimc.train.pulsed.PULSED_PRESETS` key (table in the module doc).
CHIP_DEVICES: dict[str, str] = {"rram-1t1r": "reram_sb", "ecram": "ecram"}
METHODS = ("analog-sgd", "mixed-precision", "tiki-taka-v2", "c-ttv2")
Progress = Callable[[int, int, str], None]


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


def device_for(chip: str) -> PulsedDevice:
    """The pulsed device of a chip preset (:data:`CHIP_DEVICES`).

    Example:
        >>> device_for("ecram").kind
        'linear_step'
    """
    if chip not in CHIP_DEVICES:
        raise ValueError(f"chip {chip!r} has no pulsed device model for on-chip training; "
                         f"allowed: {', '.join(CHIP_DEVICES)}")
    return PULSED_PRESETS[CHIP_DEVICES[chip]]


class _Layer:
    """One analog linear layer: pulsed weight storage, digital scale and bias."""

    def __init__(self, n_in: int, n_out: int, dev: PulsedDevice, cfg: OnChipConfig, gen: torch.Generator):
        bound = n_in ** -0.5
        self.scale = cfg.weight_range * bound
        w0 = (2.0 * torch.rand(n_out, n_in, generator=gen, device=gen.device) - 1.0) * bound / self.scale  # init
        self.b = (2.0 * torch.rand(n_out, generator=gen, device=gen.device) - 1.0) * bound
        self.cfg = cfg
        arr = PulsedArray.from_device(dev, (n_out, n_in), gen, w_init=w0)
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
        if self.base_fast_lr is not None:
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
        n_in, n_out: input and output sizes. device: the pulsed device model.
        cfg: hyper-parameters. seed: seed of the initial weights, device draws and pulses.
        torch_device: where every tensor lives (``"cpu"``, ``"cuda"``, ...); inputs are
            expected there.

    Example:
        >>> import torch
        >>> net = AnalogMLP(4, 3, PULSED_PRESETS["ecram"], OnChipConfig(hidden=(5,)), seed=0)
        >>> net.logits(torch.zeros(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(self, n_in: int, n_out: int, device: PulsedDevice, cfg: OnChipConfig, seed: int = 0,
                 torch_device: str | torch.device = "cpu"):
        self.cfg, self.device, self.torch_device = cfg, device, torch.device(torch_device)
        gen = torch.Generator(device=self.torch_device).manual_seed(int(seed))
        sizes = (n_in, *cfg.hidden, n_out)
        self.layers = [_Layer(a, b, device, cfg, gen) for a, b in zip(sizes[:-1], sizes[1:])]
        self.gen = torch.Generator(device=self.torch_device).manual_seed(int(seed) + 1)  # pulses, noise
        grouped = cfg.mode == "fast" and cfg.method != "mixed-precision"
        self.group = PulsedGroup([layer.pulsed for layer in self.layers]) if grouped else None

    def _mvm(self, h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        """``h @ w`` with the output noise (relative to its largest output), then ``+ b``."""
        if self.cfg.out_noise == 0:
            return h @ w if b is None else torch.addmm(b, h, w)
        y = h @ w
        amax = y.abs().amax(1, keepdim=True)
        y = y + self.cfg.out_noise * amax * torch.randn(y.shape, generator=self.gen, device=y.device)
        return y if b is None else y + b

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
        x, bs, total = x.flatten(1), self.cfg.batch_size, 0.0
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


@dataclass
class OnChipResult:
    """Trained model, per-epoch ``history`` (epoch, loss, train/test accuracy, seconds) and settings."""

    model: Any
    history: list[dict[str, float]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def test_accuracy(self) -> float | None:
        return self.history[-1].get("test_accuracy") if self.history else None


def _check_xy(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y must be non-empty and equally long, got {len(x)} and {len(y)}")
    return x.flatten(1).float(), y.long()


def _factor(schedule: str, ep: int, epochs: int) -> float:
    return 1.0 if schedule == "constant" else 0.5 * (1.0 + math.cos(math.pi * ep / epochs))


def _run(model, step_epoch, evaluate, x, y, epochs, seed, x_test, y_test, progress, label,
         schedule="constant") -> list[dict]:
    order_gen = torch.Generator().manual_seed(int(seed) + 2)
    history = []
    for ep in range(epochs):
        t0 = time.perf_counter()
        loss = step_epoch(torch.randperm(len(x), generator=order_gen).to(x.device), _factor(schedule, ep, epochs))
        row = {"epoch": ep + 1, "loss": loss, "seconds": time.perf_counter() - t0,
               "train_accuracy": evaluate(x, y)}
        if x_test is not None:
            row["test_accuracy"] = evaluate(x_test.flatten(1).float(), y_test.long())
        history.append(row)
        if progress is not None:
            progress(1, epochs, label)
    return history


def fit_onchip(x: torch.Tensor, y: torch.Tensor, chip: str = "rram-1t1r", method: str = "tiki-taka-v2",
               hidden: int | tuple[int, ...] = 64, epochs: int = 30, lr: float | None = None, seed: int = 0,
               progress: Progress | None = None, *, x_test: torch.Tensor | None = None,
               y_test: torch.Tensor | None = None, device: str | PulsedDevice | None = None,
               torch_device: str | torch.device = "cpu", **options) -> OnChipResult:
    """Train an :class:`AnalogMLP` on-chip with pulsed updates.

    Args:
        x: inputs (N, ...) (flattened); y: labels (N,).
        chip: chip preset choosing the device (:data:`CHIP_DEVICES`).
        method: one of :data:`METHODS`. hidden: hidden width(s). epochs, lr, seed: as usual.
        progress: optional ``progress(1, epochs, description)`` after each epoch.
        x_test, y_test: optional test set, evaluated after each epoch.
        device: override the chip's device (a preset name or a :class:`PulsedDevice`).
        torch_device: where the model and the data live during training (``"cpu"``, ``"cuda"``).
        **options: further :class:`OnChipConfig` fields (batch_size, bl, fast_lr, ...).

    Returns:
        :class:`OnChipResult` with the model, the per-epoch history and the settings used.

    Raises:
        ValueError / aimc.config.ConfigError: unknown chip, method or bad option (named).
    """
    hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    cfg = OnChipConfig(method=method, hidden=hidden, epochs=epochs, lr=lr, **options)
    dev = device_for(chip) if device is None else (PULSED_PRESETS[device] if isinstance(device, str) else device)
    x, y = _check_xy(x, y)
    n_out = int(y.max()) + 1 if y_test is None else int(max(y.max(), y_test.max())) + 1
    model = AnalogMLP(x.shape[1], n_out, dev, cfg, seed=seed, torch_device=torch_device)
    x, y = x.to(model.torch_device), y.to(model.torch_device)
    if x_test is not None:
        x_test, y_test = x_test.to(model.torch_device), y_test.to(model.torch_device)
    lr_ = cfg.lr if cfg.lr is not None else 0.1
    hist = _run(model, lambda order, f: model.train_epoch(x, y, lr_, order, f), model.accuracy, x, y,
                cfg.epochs, seed, x_test, y_test, progress, method, cfg.schedule)
    return OnChipResult(model, hist, {"chip": chip, "device": dev.to_dict(), **cfg.to_dict(), "lr": lr_, "seed": seed})


def digital_mlp(n_in: int, n_out: int, hidden: tuple[int, ...] = (64,), seed: int = 0) -> nn.Sequential:
    """The digital twin of :class:`AnalogMLP`: Flatten, Linear/ReLU..., Linear (torch init)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        sizes = (n_in, *hidden, n_out)
        mods: list[nn.Module] = [nn.Flatten()]
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            mods += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    return nn.Sequential(*mods)


def digital_epoch(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                  batch_size: int, order: torch.Tensor) -> float:
    """One plain PyTorch epoch (cross-entropy, autograd, ``opt``); returns the mean loss."""
    model.train()
    total = 0.0
    for i in range(0, len(x), batch_size):
        idx = order[i: i + batch_size]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
    return total / len(x)


def fit_digital(x: torch.Tensor, y: torch.Tensor, hidden: int | tuple[int, ...] = 64, epochs: int = 30,
                lr: float = 0.1, seed: int = 0, batch_size: int = 16, optimizer: str = "sgd",
                schedule: str = "constant", progress: Progress | None = None, *, x_test: torch.Tensor | None = None,
                y_test: torch.Tensor | None = None) -> OnChipResult:
    """Train the same MLP digitally (plain SGD or Adam) for comparison; same history format."""
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine', got {schedule!r}")
    hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    x, y = _check_xy(x, y)
    n_out = int(y.max()) + 1 if y_test is None else int(max(y.max(), y_test.max())) + 1
    model = digital_mlp(x.shape[1], n_out, hidden, seed)
    opt = (torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam)(model.parameters(), lr=lr)

    @torch.no_grad()
    def evaluate(xx, yy):
        return float((model.eval()(xx).argmax(1) == yy).float().mean())

    def epoch(order, f):
        for group in opt.param_groups:
            group["lr"] = lr * f
        return digital_epoch(model, opt, x, y, batch_size, order)

    hist = _run(model, epoch, evaluate, x, y, epochs, seed, x_test, y_test, progress, f"digital {optimizer}", schedule)
    return OnChipResult(model.eval(), hist, {"method": f"digital-{optimizer}", "hidden": list(hidden), "lr": lr,
                                             "epochs": epochs, "batch_size": batch_size, "schedule": schedule,
                                             "seed": seed})


def load_mlp(path) -> tuple[nn.Sequential, dict[str, Any]]:
    """Load an MLP checkpoint written by ``aimc train --method <on-chip method>``.

    Returns the plain ``nn.Sequential`` (eval mode) holding the trained analog weights and
    the checkpoint's metadata.
    """
    from aimc.train.fit import load_checkpoint

    state, meta = load_checkpoint(path)
    ws = [state[k] for k in sorted(state, key=lambda k: int(k.split(".")[0])) if k.endswith(".weight")]
    net = digital_mlp(ws[0].shape[1], ws[-1].shape[0], tuple(w.shape[0] for w in ws[:-1]))
    net.load_state_dict(state)
    return net.eval(), meta
