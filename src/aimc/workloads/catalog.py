"""Named workloads for ``aimc estimate MODEL``: built-in models, bare matrices, checkpoints.

``MODEL`` is one of

* ``digits-cnn`` / ``fashion-cnn``: the demo CNNs (:mod:`aimc.workloads.models`), measured on a fixed
  random batch of images in [0, 1];
* ``mvm:ROWSxCOLS`` or ``mvm:ROWSxCOLSxN``: one fully used matrix streaming ``N`` input
  vectors (default: as many as the chip holds copies of the matrix, i.e. peak throughput);
* ``transformer`` or ``transformer:D_MODEL,HEADS,D_FF,SEQ``: one encoder block;
* a checkpoint written by ``aimc train`` (``.safetensors``, any method): the model it
  names, measured on its data set's images (of a programmed hybrid chip: its analog
  layers; the small digital adapters beside them are not priced).

Example:
    >>> import aimc
    >>> work = load_workload("mvm:256x256", aimc.chips.load("pcm-hermes"))
    >>> work[0].in_features, work[0].out_features, work[0].n_mvm
    (256, 256, 64)
    >>> [w.name for w in load_workload("digits-cnn", aimc.chips.load("pcm-hermes"))]
    ['0', '3', '7']
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from aimc.chips import ChipSpec
from aimc.graph.builders import extract_workload_io
from aimc.graph.workload import LayerWork, mvm_workload
from aimc.nn.io import read_checkpoint
from aimc.tiles import TileLayout
from aimc.workloads.checkpoints import INPUT_SHAPES, rebuild

__all__ = ["MODELS", "load_workload"]

#: Built-in model names (besides ``mvm:...``, ``transformer:...`` and checkpoint paths).
MODELS = ("digits-cnn", "fashion-cnn", "transformer")
_EXAMPLE_BATCH = 8


def _images(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.rand((_EXAMPLE_BATCH, *shape), generator=torch.Generator().manual_seed(0))


def _mvm(spec: str, chip: ChipSpec) -> list[LayerWork]:
    m = re.fullmatch(r"mvm:(\d+)x(\d+)(?:x(\d+))?", spec)
    if not m or min(int(g) for g in m.groups() if g is not None) < 1:
        raise ValueError(f"MODEL {spec!r}: expected mvm:ROWSxCOLS or mvm:ROWSxCOLSxN with positive integers")
    rows, cols = int(m.group(1)), int(m.group(2))
    if m.group(3):
        return mvm_workload(rows, cols, int(m.group(3)))
    tiles = TileLayout(rows, cols, chip.rows, chip.cols, chip.mapping.slices).n_tiles
    return mvm_workload(rows, cols, max(1, chip.n_tiles // tiles))


def _transformer(spec: str) -> list[LayerWork]:
    from aimc.graph.builders import transformer_block_workload

    if spec == "transformer":
        return transformer_block_workload()
    m = re.fullmatch(r"transformer:(\d+),(\d+),(\d+),(\d+)", spec)
    if not m:
        raise ValueError(f"MODEL {spec!r}: expected transformer or transformer:D_MODEL,HEADS,D_FF,SEQ")
    d, h, f, s = (int(g) for g in m.groups())
    return transformer_block_workload(d_model=d, n_heads=h, d_ff=f, seq_len=s)


def _checkpoint(path: Path) -> list[LayerWork]:
    built = rebuild(read_checkpoint(path))
    if built.dataset not in INPUT_SHAPES:
        raise ValueError(f"{path}: checkpoint run field 'dataset' is {built.dataset!r}; "
                         f"allowed: {', '.join(INPUT_SHAPES)}")
    return extract_workload_io(built.digital, _images(INPUT_SHAPES[built.dataset]))


def load_workload(spec: str, chip: ChipSpec) -> list[LayerWork]:
    """Turn a ``MODEL`` argument into a workload priced on ``chip`` (see module doc).

    Raises:
        ValueError: unknown model name, malformed ``mvm:``/``transformer:`` spec, or a
            checkpoint that cannot be read or rebuilt (file and reason);
            FileNotFoundError: missing checkpoint.
    """
    from aimc.workloads.models import digits_cnn, fashion_cnn
    if spec == "digits-cnn":
        return extract_workload_io(digits_cnn(seed=0), _images(INPUT_SHAPES["digits"]))
    if spec == "fashion-cnn":
        return extract_workload_io(fashion_cnn(seed=0), _images(INPUT_SHAPES["fashion-mnist"]))
    if spec.startswith("mvm:"):
        return _mvm(spec, chip)
    if spec.startswith("transformer"):
        return _transformer(spec)
    path = Path(spec)
    if path.suffix == ".safetensors" or path.exists():
        return _checkpoint(path)
    raise ValueError(f"unknown MODEL {spec!r}; allowed: {', '.join(MODELS)}, mvm:ROWSxCOLS[xN], "
                     "transformer:D_MODEL,HEADS,D_FF,SEQ or a .safetensors checkpoint from `aimc train`")
