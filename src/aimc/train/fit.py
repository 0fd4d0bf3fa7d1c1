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

import copy
import json
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load_file, save_file
from torch import nn

import aimc
from aimc.models import train_digital
from aimc.train.hat import HATConfig, enable_hat

__all__ = ["hat_finetune", "save_checkpoint", "load_checkpoint"]

_META = "aimc_checkpoint"


def hat_finetune(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chip, cfg: HATConfig | None = None,
                 epochs: int = 15, lr: float = 1e-3, batch_size: int = 64, seed: int = 0,
                 progress: Callable[[int, int, str], None] | None = None) -> nn.Module:
    """Hardware-aware fine-tuning of a (trained) digital model for ``chip``.

    Converts a copy of ``model``, installs :class:`~aimc.train.hat.HATForward` on its
    analog layers, trains with Adam and cross-entropy, and returns a digital model of the
    same architecture holding the trained weights (to save, convert and program).
    """
    analog = aimc.convert(model, chip)
    enable_hat(analog, cfg if cfg is not None else HATConfig(), seed=seed)
    train_digital(analog, x, y, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=progress)
    out = copy.deepcopy(model)
    digital_keys = set(out.state_dict())
    out.load_state_dict({k: v for k, v in analog.state_dict().items() if k in digital_keys})
    return out.eval()


def save_checkpoint(model: nn.Module, path: str | Path, meta: dict[str, Any], *, overwrite: bool = False) -> None:
    """Save a digital model's weights and JSON metadata to ``.safetensors``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--force) to replace it")
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
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
