"""Models rebuilt from checkpoints: what ``aimc demo --checkpoint``, ``aimc estimate FILE``
and ``aimc train --init`` read, and the model names ``aimc train`` writes.

A checkpoint's header (:mod:`aimc.nn.io`) names what builds its model: ``digits-cnn`` /
``fashion-cnn`` (:mod:`aimc.workloads.models`), or ``mlp`` (the on-chip-trained MLP of
:func:`aimc.train.onchip.digital_mlp`, with its sizes); ``adapter_rank`` adds the digital
low-rank adapters of hybrid fine-tuning (:func:`aimc.train.hybrid.add_adapters`). Files of
the previous version name no model: the run's data set picks its CNN.

Example:
    >>> import tempfile, pathlib, aimc
    >>> from aimc.workloads.models import digits_cnn
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.safetensors"
    >>> _ = aimc.nn.save_state(digits_cnn(seed=1), path, model_spec=model_spec("digits"),
    ...                        run={"dataset": "digits", "method": "digital"})
    >>> m = rebuild(aimc.nn.read_checkpoint(path))
    >>> m.dataset, m.analog is None, sum(p.numel() for p in m.digital.parameters())
    ('digits', True, 6090)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from aimc.chips import ChipSpec
from aimc.nn.convert import analog_layers, convert
from aimc.nn.io import Checkpoint, load_state
from aimc.workloads.models import digits_cnn, fashion_cnn
from aimc.workloads.recipes import RECIPES

__all__ = ["BUILDERS", "INPUT_SHAPES", "Rebuilt", "model_spec", "mlp_spec", "rebuild"]

#: Input shape (C, H, W) of one image of each data set.
INPUT_SHAPES = {"digits": (1, 8, 8), "fashion-mnist": (1, 28, 28)}


def _mlp(spec: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    from aimc.train.onchip import mlp_from_state

    return mlp_from_state(state)


#: Model name -> ``builder(model_spec, state) -> nn.Module`` (digital, untrained).
BUILDERS: dict[str, Callable[[dict[str, Any], dict[str, torch.Tensor]], nn.Module]] = {
    "digits-cnn": lambda spec, state: digits_cnn(seed=0),
    "fashion-cnn": lambda spec, state: fashion_cnn(seed=0),
    "mlp": _mlp,
}
_CNNS = {"digits-cnn": digits_cnn, "fashion-cnn": fashion_cnn}


def model_spec(dataset: str) -> dict[str, Any]:
    """The header ``model`` of the CNN that ``aimc train`` trains on ``dataset``.

    Example:
        >>> model_spec("fashion-mnist")
        {'name': 'fashion-cnn'}
    """
    if dataset not in RECIPES:
        raise ValueError(f"unknown dataset {dataset!r}; allowed: {', '.join(RECIPES)}")
    return {"name": next(n for n, f in _CNNS.items() if f is RECIPES[dataset]["model"])}


def mlp_spec(model: nn.Sequential) -> dict[str, Any]:
    """The header ``model`` of an MLP of :func:`aimc.train.onchip.digital_mlp`'s shape."""
    lins = [m for m in model if isinstance(m, nn.Linear)]
    return {"name": "mlp", "n_in": lins[0].in_features, "hidden": [m.out_features for m in lins[:-1]],
            "n_out": lins[-1].out_features}


@dataclass
class Rebuilt:
    """A checkpoint's model, rebuilt.

    Attributes:
        checkpoint: the file read. dataset: its run's data set (None if not recorded).
        digital: the digital model holding the weights (for a programmed chip: its
            target weights and biases).
        analog: the converted model holding the checkpoint's analog state (a programmed
            checkpoint: the chip as saved; weights with ``chip``: unprogrammed, with the
            trained output gains and input ranges); None for weights without ``chip``.
    """

    checkpoint: Checkpoint
    dataset: str | None
    digital: nn.Module
    analog: nn.Module | None


def _describe(ck: Checkpoint) -> str:
    how = ck.run.get("method")
    return f"{ck.path} ({ck.kind}{', ' + how if isinstance(how, str) else ''})"


def rebuild(ck: Checkpoint, chip: ChipSpec | str | None = None) -> Rebuilt:
    """Build the model a checkpoint names and load it (module doc).

    Args:
        ck: from :func:`aimc.nn.read_checkpoint`.
        chip: for a ``weights`` checkpoint, also convert the model onto this chip (its
            trained output gains and input ranges are loaded). A ``programmed`` one
            always comes with its own chip; a different ``chip`` is refused.

    Raises:
        ValueError: the file names no model (nor a data set) or an unknown one, its
            weights do not fit the model, or ``chip`` differs from a programmed chip.
    """
    dataset = ck.run.get("dataset") if isinstance(ck.run.get("dataset"), str) else None
    spec = ck.model
    if spec is None and dataset in RECIPES:
        spec = model_spec(dataset)
    if spec is None:
        raise ValueError(f"{_describe(ck)} does not say what model it holds (no header 'model' nor a known "
                         f"'dataset'; e.g. a file of aimc.nn.save_state without model_spec): build the model "
                         f"yourself and load it with aimc.nn.load_state")
    if spec["name"] not in BUILDERS:
        raise ValueError(f"{ck.path}: header field 'model.name' is {spec['name']!r}; this aimc builds "
                         f"{', '.join(BUILDERS)}")
    try:
        digital = BUILDERS[spec["name"]](spec, ck.state).eval()
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as e:
        raise ValueError(f"{ck.path}: cannot build its model from header 'model' {spec}: {e}") from None
    rank = spec.get("adapter_rank")
    if rank is not None and (not isinstance(rank, int) or isinstance(rank, bool) or rank < 1):
        raise ValueError(f"{ck.path}: header field 'model.adapter_rank' must be an integer >= 1, got {rank!r}")
    if ck.kind == "programmed":
        saved = ck.chip()
        if saved is None:
            raise ValueError(f"{ck.path}: a programmed checkpoint without a chip (header 'chips' is empty)")
        if chip is not None and _spec(chip) != saved:
            raise ValueError(f"{ck.path} holds a chip programmed on {saved.name!r}, not {_spec(chip).name!r}; "
                             "leave out the chip to evaluate the saved chip")
        analog = convert(digital, saved)
        if rank is not None:
            from aimc.train.hybrid import add_adapters

            add_adapters(analog, rank)
        load_state(analog, ck)
        _copy_targets(digital, analog)
        return Rebuilt(ck, dataset, digital, analog.eval())
    if rank is not None:
        raise ValueError(f"{ck.path}: adapters ('model.adapter_rank') belong to a programmed chip, "
                         "this file holds weights")
    load_state(digital, ck)
    if chip is None:
        return Rebuilt(ck, dataset, digital, None)
    on_chip = convert(digital, _spec(chip))
    load_state(on_chip, ck)
    return Rebuilt(ck, dataset, digital, on_chip.eval())


def _spec(chip: ChipSpec | str) -> ChipSpec:
    from aimc.chips import load

    return load(chip)


def _copy_targets(digital: nn.Module, analog: nn.Module) -> None:
    """Copy an analog model's weights and biases into its digital twin (same layer order)."""
    mvms = [m for m in digital.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    layers = [m for _, m in analog_layers(analog)]
    if len(mvms) != len(layers):
        raise ValueError(f"{len(layers)} analog layers for {len(mvms)} weight layers of the digital model")
    with torch.no_grad():
        for d, a in zip(mvms, layers):
            d.weight.copy_(a.weight)
            if d.bias is not None:
                assert a.bias is not None  # the twin's layers have the same biases
                d.bias.copy_(a.bias)
