"""On-chip analog training of an MLP whose weights live on pulsed device arrays.

The model, its training step and the update rules are in :mod:`aimc.train.onchip_model`
(:class:`AnalogMLP`, :class:`OnChipConfig`, :data:`METHODS`, re-exported here). This
module trains: :func:`fit_onchip` (pulsed updates), :func:`fit_digital` (the same MLP
trained digitally, for comparison); :func:`load_mlp` reads a saved checkpoint back as a
plain MLP.

The device comes from the chip: the ``pulsed:`` section of its spec
(:class:`~aimc.physics.pulsed.PulsedDevice`, :func:`device_for`), a preset name or your own
YAML file; a chip without one is refused. The presets that have one:

============  ===========================================================================
chip          ``pulsed:`` response (normalised units)
============  ===========================================================================
rram-1t1r     soft bounds in [-0.75, 1.25], dw_min 0.002 (~1000 steps), cycle-to-cycle
              375 %, device-to-device 30 % (steps), 24 % (bounds); aihwkit
              ``ReRamSBPresetDevice`` (Gong et al. 2018), ``PULSED_PRESETS["reram_sb"]``
ecram         linear step, gamma_up 0.115, gamma_down 0.509 (down steps ~2x larger at the
              top), dw_min 0.002 (~1000 steps), c2c 30 %, d2d 10 %; aihwkit
              ``EcRamPresetDevice`` (Tang et al. 2018), ``PULSED_PRESETS["ecram"]``
============  ===========================================================================

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
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from aimc import chips
from aimc.seeding import seeded
from aimc.train.onchip_model import METHODS, AnalogMLP, ChipLike, OnChipConfig, device_for

__all__ = ["METHODS", "OnChipConfig", "AnalogMLP", "OnChipResult", "fit_onchip",
           "digital_mlp", "digital_epoch", "fit_digital", "device_for", "load_mlp", "mlp_from_state"]

Progress = Callable[[int, int, str], None]


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


def fit_onchip(x: torch.Tensor, y: torch.Tensor, chip: ChipLike = "rram-1t1r", method: str = "tiki-taka-v2",
               hidden: int | tuple[int, ...] = 64, epochs: int = 30, lr: float | None = None, seed: int = 0,
               progress: Progress | None = None, *, x_test: torch.Tensor | None = None,
               y_test: torch.Tensor | None = None, torch_device: str | torch.device = "cpu", **options) -> OnChipResult:
    """Train an :class:`AnalogMLP` on-chip with pulsed updates.

    Args:
        x: inputs (N, ...) (flattened); y: labels (N,).
        chip: the chip whose ``pulsed:`` device holds the weights: a preset name, a YAML
            path or a :class:`~aimc.chips.ChipSpec` (:func:`device_for`). To try another
            device, give a chip with another ``pulsed`` section, e.g.
            ``aimc.chips.load("ecram").replace(pulsed=aimc.physics.PULSED_PRESETS["reram_es"])``.
        method: one of :data:`METHODS`. hidden: hidden width(s). epochs, lr, seed: as usual.
        progress: optional ``progress(1, epochs, description)`` after each epoch.
        x_test, y_test: optional test set, evaluated after each epoch.
        torch_device: where the model and the data live during training (``"cpu"``, ``"cuda"``).
        **options: further :class:`OnChipConfig` fields (batch_size, bl, fast_lr, ...).

    Returns:
        :class:`OnChipResult` with the model, the per-epoch history and the settings used.

    Raises:
        ValueError / aimc.config.ConfigError: unknown chip, a chip without a ``pulsed``
            section, unknown method or bad option (named).
    """
    if (x_test is None) != (y_test is None):
        raise ValueError("x_test and y_test: give both or neither")
    hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    cfg = OnChipConfig(method=method, hidden=hidden, epochs=epochs, lr=lr, **options)
    spec = chips.load(chip)
    dev = device_for(spec)
    x, y = _check_xy(x, y)
    n_out = int(y.max()) + 1 if y_test is None else int(max(y.max(), y_test.max())) + 1
    model = AnalogMLP(x.shape[1], n_out, dev, cfg, seed=seed, torch_device=torch_device)
    x, y = x.to(model.torch_device), y.to(model.torch_device)
    if x_test is not None and y_test is not None:
        x_test, y_test = x_test.to(model.torch_device), y_test.to(model.torch_device)
    lr_ = cfg.lr if cfg.lr is not None else 0.1
    hist = _run(model, lambda order, f: model.train_epoch(x, y, lr_, order, f), model.accuracy, x, y,
                cfg.epochs, seed, x_test, y_test, progress, method, cfg.schedule)
    return OnChipResult(model, hist, {"chip": spec.name, "device": dev.to_dict(), **cfg.to_dict(), "lr": lr_,
                                      "seed": seed})


def digital_mlp(n_in: int, n_out: int, hidden: tuple[int, ...] = (64,), seed: int = 0) -> nn.Sequential:
    """The digital twin of :class:`AnalogMLP`: Flatten, Linear/ReLU..., Linear (torch init)."""
    with seeded(seed):
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

    Returns the plain ``nn.Sequential`` (eval mode) holding the trained analog weights
    (sizes taken from them) and the checkpoint's run information.

    Raises:
        ValueError: the file cannot be read (:func:`aimc.nn.read_checkpoint`) or holds
            no MLP of :func:`digital_mlp`'s shape.
    """
    from aimc.nn.io import load_state, read_checkpoint

    ck = read_checkpoint(path)
    net = mlp_from_state(ck.state, where=str(path))
    load_state(net, ck)
    return net.eval(), ck.run


def mlp_from_state(state: dict[str, torch.Tensor], where: str = "state") -> nn.Sequential:
    """An untrained :func:`digital_mlp` with the layer sizes of ``state``'s weights.

    Example:
        >>> mlp_from_state(digital_mlp(6, 3, (5,)).state_dict())[1].weight.shape
        torch.Size([5, 6])
    """
    try:
        keys = sorted((k for k in state if k.endswith(".weight")), key=lambda k: int(k.split(".")[0]))
    except ValueError:
        keys = []
    ws = [state[k] for k in keys]
    if not ws or any(w.dim() != 2 for w in ws):
        raise ValueError(f"{where} holds no MLP (expected 2-d weights '1.weight', '3.weight', ...)")
    return digital_mlp(ws[0].shape[1], ws[-1].shape[0], tuple(w.shape[0] for w in ws[:-1]))
