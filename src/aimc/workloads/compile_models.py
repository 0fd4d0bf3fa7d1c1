"""The models ``aimc compile`` and ``aimc run`` take, with their data: :func:`load_model`.

``MODEL`` is one of

* ``digits-cnn``, ``digits-transformer`` (:mod:`aimc.workloads.transformer_models`),
  ``fashion-cnn``: trained here in floating point with a fixed seed (digits: seconds;
  Fashion-MNIST: about a minute) on the training images minus a held-out calibration
  split (the last 360 digits / 2,000 Fashion-MNIST training images), on one thread
  (:data:`TRAIN_THREADS`: the same weights on any machine); ``aimc run`` measures on the
  test set;
* a checkpoint from ``aimc train`` (``.safetensors``): its model and data set (calibration:
  the last images of the training split it was trained on, so calibration there is
  optimistic);
* ``encoder:D_MODEL,HEADS,D_FF,BLOCKS``: an untrained encoder of that size (no data: for
  the all-analog / energy policies and compile-time benchmarks);
* an ONNX file (``.onnx``): captured into the op graph (:func:`aimc.graph.capture`),
  priced with its host operations (softmax, norms, element-wise); with ``dataset``
  (``digits`` or ``fashion-mnist``, the images it was trained on) it gets the same
  calibration and test splits as the named models, so ``sensitivity`` and ``aimc run``
  work on it (:func:`export_onnx` writes a named model's ONNX file);
* the shape-only workloads of ``aimc estimate`` (``mvm:...``, ``transformer:...``): no
  module, no data.

Example:
    >>> m = load_model("encoder:64,4,128,2", chip="pcm-hermes")
    >>> m.module is not None, m.calibration is None, len(m.work)
    (True, True, 14)
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from aimc.chips import ChipSpec, load
from aimc.graph.builders import extract_workload_io
from aimc.graph.workload import LayerWork
from aimc.seeding import seeded
from aimc.train.digital import n_params, train_digital
from aimc.workloads.models import digits_cnn, fashion_cnn
from aimc.workloads.transformer_models import digits_transformer, encoder_classifier

__all__ = ["LoadedModel", "MODELS", "N_CAL", "TRAIN_THREADS", "export_onnx", "load_model"]

#: Calibration images held out of each data set's training split (the last ones).
N_CAL = {"digits": 360, "fashion-mnist": 2000}

#: Threads the named models are trained with, whatever the process uses: floating-point
#: sums split over threads add in another order, so the trained weights (and every number
#: measured on them) would otherwise depend on the machine's thread count.
TRAIN_THREADS = 1

#: Trained models by name: ``(builder, dataset, epochs, lr, batch_size)``.
MODELS: dict[str, tuple[Callable[..., nn.Module], str, int, float, int]] = {
    "digits-cnn": (digits_cnn, "digits", 30, 3e-3, 32),
    "digits-transformer": (digits_transformer, "digits", 60, 3e-3, 32),
    "fashion-cnn": (fashion_cnn, "fashion-mnist", 3, 1e-3, 128),
}

Pair = tuple[torch.Tensor, torch.Tensor]


@dataclass
class LoadedModel:
    """A model ready to compile.

    Attributes:
        spec: the MODEL argument.
        module: the digital model (None: shape-only workload).
        work: its matrix layers.
        calibration: ``(x, y)`` the sensitivity policy measures on, or None.
        test: ``(x, y)`` that ``aimc run`` measures on, or None.
        dataset: the data set's name.
        n_params: parameters.
        host_ops: its non-MVM work as ``{op kind: elements}`` from the captured op graph
            (empty for models measured by hooks).
    """

    spec: str
    module: nn.Module | None
    work: list[LayerWork]
    calibration: Pair | None = None
    test: Pair | None = None
    dataset: str | None = None
    n_params: int = 0
    host_ops: dict[str, int] = field(default_factory=dict)


def _split(dataset: str, root: str | None) -> tuple[Pair, Pair, Pair]:
    from aimc.workloads.data import load_dataset

    x_tr, y_tr, x_te, y_te = load_dataset(dataset, root=root)
    n_cal = N_CAL[dataset]
    return (x_tr[:-n_cal], y_tr[:-n_cal]), (x_tr[-n_cal:], y_tr[-n_cal:]), (x_te, y_te)


def _measured(spec: str, module: nn.Module, x: torch.Tensor, graph: bool = True, **kw) -> LoadedModel:
    """The model's workload: from its op graph (:func:`aimc.graph.capture`: every MVM,
    activation x activation products included, and the host ops), named by module path
    as the module's layers; ``graph=False`` (very large models, where ``torch.export``
    takes minutes) or a model capture refuses: measured by hooks, matrix layers only."""
    from aimc.graph import CaptureError, capture

    module.eval()
    if graph:
        try:
            g = capture(module, x[:8])
            return LoadedModel(spec, module, list(g.workload(x[:8])), n_params=n_params(module),
                               host_ops=g.host_ops(), **kw)
        except CaptureError as e:
            logging.getLogger("aimc").warning("%s: op-graph capture failed (%s); measuring its layers by hooks",
                                              spec, e)
    return LoadedModel(spec, module, extract_workload_io(module, x[:8]), n_params=n_params(module), **kw)


def _trained(spec: str, seed: int, root: str | None) -> LoadedModel:
    build, dataset, epochs, lr, bs = MODELS[spec]
    train, cal, test = _split(dataset, root)
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)  # the float sums' order, hence the weights, depend on the thread count
    try:
        with seeded(seed):  # dropout-free models: only the initialisation draws
            model = train_digital(build(seed=seed), *train, epochs=epochs, lr=lr, batch_size=bs, seed=seed)
    finally:
        torch.set_num_threads(threads)
    return _measured(spec, model, cal[0], calibration=cal, test=test, dataset=dataset)


def _checkpoint(path: Path, root: str | None) -> LoadedModel:
    from aimc.nn.io import read_checkpoint
    from aimc.workloads.checkpoints import INPUT_SHAPES, rebuild

    built = rebuild(read_checkpoint(path))
    if built.dataset not in INPUT_SHAPES:
        raise ValueError(f"{path}: checkpoint run field 'dataset' is {built.dataset!r}; "
                         f"allowed: {', '.join(INPUT_SHAPES)}")
    _, cal, test = _split(built.dataset, root)
    return _measured(str(path), built.digital, cal[0], calibration=cal, test=test, dataset=built.dataset)


def _onnx(path: Path, dataset: str | None = None, root: str | None = None) -> LoadedModel:
    """An ONNX file through the op graph (:func:`aimc.graph.capture`): its MVM layers, its
    host ops, and a PyTorch module running it whose MVM layers are named as the graph's
    nodes (so :func:`aimc.convert`'s filter can pick them). Without ``dataset``: no data
    (the all-analog, all-digital and energy policies); with it: the data set's calibration
    and test splits, and input statistics measured on calibration images as for the
    named models (so the same model from PyTorch and from ONNX compiles to the same plan)."""
    from aimc.graph import capture

    if not path.exists():
        raise FileNotFoundError(f"ONNX file {path} not found")
    graph = capture(str(path))
    module = graph.to_module().eval()
    n = sum(int(graph.weights[t].numel()) for nd in graph.mvm_nodes() for t in (nd.weight, nd.bias) if t)
    if dataset is None:
        return LoadedModel(str(path), module, list(graph.workload()), n_params=n, host_ops=graph.host_ops())
    if dataset not in N_CAL:
        raise ValueError(f"--dataset {dataset!r} is not known; allowed: {', '.join(N_CAL)}")
    _, cal, test = _split(dataset, root)
    shape = graph.values[graph.inputs[0]][1:]
    if tuple(cal[0].shape[1:]) != tuple(shape):
        raise ValueError(f"{path}: input {graph.inputs[0]!r} has shape {tuple(shape)} per sample, but {dataset} "
                         f"images are {tuple(cal[0].shape[1:])}")
    return LoadedModel(str(path), module, list(graph.workload(cal[0][:8])), calibration=cal, test=test,
                       dataset=dataset, n_params=n, host_ops=graph.host_ops())


def export_onnx(spec: str, path: str | os.PathLike, seed: int = 0, data_root: str | None = None,
                if_exists: str = "error") -> Path:
    """Write the model ``spec`` names (trained as :func:`load_model` trains it) as an ONNX
    file at batch 1 (``torch.onnx.export``'s dynamo exporter; needs ``onnxscript``),
    atomically: an existing ``path`` is refused unless ``if_exists="overwrite"``, and is
    replaced only once the new file is complete (:mod:`aimc.outputs`).

    Example (a few seconds: the model is trained first):
        >>> import tempfile, pathlib
        >>> p = export_onnx("digits-cnn", pathlib.Path(tempfile.mkdtemp()) / "cnn.onnx")  # doctest: +SKIP
    """
    import warnings

    from aimc.outputs import claim_output, write_atomic

    out = claim_output(path, if_exists=if_exists, hint="choose another name or pass --force")
    m = load_model(spec, seed=seed, data_root=data_root)
    if m.module is None or m.calibration is None:
        raise ValueError(f"MODEL {spec!r} has no trained weights to export; give a named model or a checkpoint")
    x, module = m.calibration[0][:1], m.module.eval()

    def write(tmp: Path) -> None:
        log = logging.getLogger("torch.onnx")
        level = log.level
        log.setLevel(logging.ERROR)  # the exporter's progress lines, for this export only
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(module, (x,), str(tmp), dynamo=True, verbose=False)
        finally:
            log.setLevel(level)

    return write_atomic(out, write)


def load_model(spec: str, chip: ChipSpec | str = "pcm-hermes", seed: int = 0, data_root: str | None = None,
               dataset: str | None = None) -> LoadedModel:
    """Build (and train, or read) the model ``spec`` names, with its data (module doc).

    Args:
        spec: MODEL argument.
        chip: the chip (sizes the default ``mvm:`` stream).
        seed: training seed of the named models.
        data_root: folder of Fashion-MNIST's files (default: the Debian package's).
        dataset: the data set of an ONNX file (the other models know theirs).

    Raises:
        ValueError: unknown or malformed MODEL (the allowed forms listed);
            FileNotFoundError: a missing checkpoint or data file.
    """
    if dataset is not None and not spec.lower().endswith(".onnx"):
        raise ValueError(f"--dataset is for ONNX files; MODEL {spec!r} knows its data set")
    if spec in MODELS:
        return _trained(spec, seed, data_root)
    m = re.fullmatch(r"encoder:(\d+),(\d+),(\d+),(\d+)", spec)
    if m:
        d, h, f, b = (int(g) for g in m.groups())
        model = encoder_classifier(d, h, f, b, seed=seed)
        x = torch.rand((1, 16, 64), generator=torch.Generator().manual_seed(0))  # (B, T, d_in)
        return _measured(spec, model, x, graph=False)
    if spec.startswith(("mvm:", "transformer")):
        from aimc.workloads.catalog import load_workload

        return LoadedModel(spec, None, load_workload(spec, load(chip)))
    path = Path(spec)
    if path.suffix.lower() == ".onnx":
        return _onnx(path, dataset, data_root)
    if path.suffix == ".safetensors" or path.exists():
        return _checkpoint(path, data_root)
    raise ValueError(f"unknown MODEL {spec!r}; allowed: {', '.join(MODELS)}, encoder:D_MODEL,HEADS,D_FF,BLOCKS, "
                     "mvm:ROWSxCOLS[xN], transformer:D_MODEL,HEADS,D_FF,SEQ or a .safetensors checkpoint "
                     "from `aimc train`")
