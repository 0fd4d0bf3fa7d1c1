"""Training recipes on top of HAT (no file I/O: save with :func:`aimc.nn.save_state`).

Example:
    >>> import torch, aimc
    >>> from aimc.train.fit import hat_finetune
    >>> from aimc.train.hat import HATConfig
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3))
    >>> x, y = torch.randn(64, 4), torch.arange(64) % 3
    >>> net = hat_finetune(net, x, y, "pcm-hermes", HATConfig(), epochs=1, seed=0)
    >>> [m.is_programmed for _, m in aimc.nn.analog_layers(net)]
    [False]
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from aimc.nn.convert import convert
from aimc.train.digital import train_digital
from aimc.train.hat import HATConfig, enable_hat

__all__ = ["hat_finetune"]


def hat_finetune(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chip, cfg: HATConfig | str | None = None,
                 epochs: int = 15, lr: float = 1e-3, batch_size: int = 64, seed: int = 0,
                 progress: Callable[[int, int, str], None] | None = None, **optim) -> nn.Module:
    """Hardware-aware fine-tuning of a (trained) digital model for ``chip``.

    Converts a copy of ``model``, installs :class:`~aimc.train.hat.HATForward` on its
    analog layers (``cfg``: a config or a name of :data:`~aimc.train.hat.HAT_PRESETS`),
    trains with Adam and cross-entropy (``optim``: the optimiser keywords of
    :func:`~aimc.train.digital.train_digital`: weight decay, gradient clipping, warm-up),
    and returns the converted, unprogrammed model with the HAT read removed: program it,
    or save it with :func:`aimc.nn.save_state`.
    """
    analog = convert(model, chip)
    enable_hat(analog, cfg if cfg is not None else HATConfig(), seed=seed)
    train_digital(analog, x, y, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=progress, **optim)
    enable_hat(analog, None)
    return analog.eval()
