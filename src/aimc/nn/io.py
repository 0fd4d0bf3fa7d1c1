"""Save and load a model's programmed chip state with safetensors.

The file holds the full ``state_dict`` (weights, biases and the programmed conductances,
drift parameters, scales, time and compensation of every analog layer) and, as metadata,
each analog layer's chip spec, so loading onto a differently configured model fails
loudly instead of silently mixing chips.

Example:
    >>> import torch, aimc, tempfile, pathlib
    >>> net = aimc.convert(torch.nn.Linear(4, 2), "pcm")
    >>> aimc.program(net, seed=0)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "chip.safetensors"
    >>> aimc.nn.save_state(net, path)
    >>> twin = aimc.convert(torch.nn.Linear(4, 2), "pcm")
    >>> aimc.nn.load_state(twin, path)
    >>> torch.equal(twin.g_uS, net.g_uS)
    True
"""
from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from aimc.nn.convert import analog_layers

__all__ = ["save_state", "load_state"]

_META_KEY = "aimc_chips"


def save_state(model: nn.Module, path: str | Path, *, overwrite: bool = False) -> None:
    """Write ``model.state_dict()`` and its chip specs to a ``.safetensors`` file.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    chips = {name: layer.chip.to_dict() for name, layer in analog_layers(model)}
    save_file(tensors, str(path), metadata={_META_KEY: json.dumps(chips)})


def load_state(model: nn.Module, path: str | Path, *, strict: bool = True) -> None:
    """Load a file written by :func:`save_state` into ``model`` (built the same way).

    Raises:
        ValueError: the file's chip for a layer differs from the model's.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such checkpoint: {path}")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    saved = json.loads(meta.get(_META_KEY, "{}"))
    for name, layer in analog_layers(model):
        if name in saved and saved[name] != layer.chip.to_dict():
            raise ValueError(f"{path}: layer '{name}' was programmed on chip "
                             f"{saved[name].get('name')!r}, the model uses {layer.chip.name!r}")
    device = next(model.parameters()).device
    model.load_state_dict({k: v.to(device) for k, v in load_file(str(path)).items()}, strict=strict)
