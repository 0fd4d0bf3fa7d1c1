"""Training recipes on top of HAT, and checkpoints that ``aimc demo`` can evaluate.

Example:
    >>> import torch, tempfile, pathlib
    >>> from aimc.train.fit import hat_finetune, save_checkpoint, load_checkpoint
    >>> from aimc.train.hat import HATConfig
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3))
    >>> x, y = torch.randn(64, 4), torch.arange(64) % 3
    >>> net = hat_finetune(net, x, y, "pcm-hermes", HATConfig(), epochs=1, seed=0)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.safetensors"
    >>> save_checkpoint(net, path, {"model": "toy"})
    >>> load_checkpoint(path)[1]["model"]
    'toy'
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from aimc.nn.convert import convert
from aimc.train.digital import train_digital
from aimc.train.hat import HATConfig, enable_hat

__all__ = ["hat_finetune", "save_checkpoint", "load_checkpoint", "split_state", "load_into"]

_META = "aimc_checkpoint"


def hat_finetune(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chip, cfg: HATConfig | str | None = None,
                 epochs: int = 15, lr: float = 1e-3, batch_size: int = 64, seed: int = 0,
                 progress: Callable[[int, int, str], None] | None = None) -> nn.Module:
    """Hardware-aware fine-tuning of a (trained) digital model for ``chip``.

    Converts a copy of ``model``, installs :class:`~aimc.train.hat.HATForward` on its
    analog layers (``cfg``: a config or a name of :data:`~aimc.train.hat.HAT_PRESETS`),
    trains with Adam and cross-entropy, and returns the converted, unprogrammed model
    with the HAT read removed: program it, or save it with :func:`save_checkpoint`.
    """
    analog = convert(model, chip)
    enable_hat(analog, cfg if cfg is not None else HATConfig(), seed=seed)
    train_digital(analog, x, y, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=progress)
    enable_hat(analog, None)
    return analog.eval()


#: Buffers of a programmed chip; a checkpoint holds what is to be programmed, not a chip.
_CHIP_STATE = ("g_uS", "drift_state", "out_scale", "t_s", "gdc_ref", "gdc", "read_seed")


def split_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Split a checkpoint (or a converted model's state) into the digital model's state
    and the analog layers' trained digital parameters (``*.out_gain``, ``*.input_range``);
    programmed-chip buffers are dropped.

    Example:
        >>> d, a = split_state({"0.weight": torch.ones(1), "0.out_gain": torch.ones(1)})
        >>> list(d), list(a)
        (['0.weight'], ['0.out_gain'])
    """
    extra = {k: v for k, v in state.items() if k.rsplit(".", 1)[-1] in ("out_gain", "input_range")}
    digital = {k: v for k, v in state.items() if k not in extra and k.rsplit(".", 1)[-1] not in _CHIP_STATE}
    return digital, extra


def load_into(model: nn.Module, analog: nn.Module | None, state: dict[str, torch.Tensor]) -> None:
    """Load a checkpoint's weights into the digital ``model`` and, when given, its
    converted twin ``analog``'s output gains and input ranges (names must match)."""
    digital, extra = split_state(state)
    model.load_state_dict(digital)
    if analog is not None and extra:
        own = analog.state_dict()
        missing = sorted(set(extra) - set(own))
        if missing:
            raise ValueError(f"checkpoint has analog parameters for layers the model lacks: {', '.join(missing)}")
        analog.load_state_dict({**own, **extra})


def save_checkpoint(model: nn.Module, path: str | Path, meta: dict[str, Any], *, overwrite: bool = False) -> None:
    """Save a model's weights and JSON metadata to ``.safetensors``.

    ``model`` is digital or converted; of a converted one, the weights, biases and the
    analog layers' trained ``out_gain``/``input_range`` are saved, not a programmed chip.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--force) to replace it")
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()
               if k.rsplit(".", 1)[-1] not in _CHIP_STATE}
    save_file(tensors, str(path), metadata={_META: json.dumps(meta)})


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return ``(state_dict, metadata)`` of a checkpoint written by :func:`save_checkpoint`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such checkpoint: {path}")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if _META not in meta:
        raise ValueError(f"{path} is not an aimc checkpoint (no '{_META}' metadata)")
    return load_file(str(path)), json.loads(meta[_META])
