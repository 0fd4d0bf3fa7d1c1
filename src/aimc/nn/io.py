"""One checkpoint format for trained models and programmed chips: safetensors + a header.

A checkpoint is a ``.safetensors`` file whose tensors are a model's ``state_dict`` and
whose metadata key ``"aimc"`` holds one JSON header:

=============  =========================================================================
``_version``   format version (:data:`FORMAT_VERSION`; 2: a programmed layer may be
               lean, its devices redrawn from ``prog_seed`` and ``g_uS``/``drift_state``
               empty, :mod:`aimc.nn.base`; files of version 1 store every device and
               are read with ``prog_seed`` -1)
``kind``       ``"weights"``: trained weights (digital, hardware-aware or on-chip
               trained; of analog layers also the trained output gains and input
               ranges), no chip state; ``"programmed"``: the full state of programmed
               chips (conductances and drift state, or the seed of a lean chip; time,
               compensation, read seed) too
``chips``      ``{layer name: chip spec dict}`` of every analog layer (the chip it was
               trained for or programmed on); ``{}`` for a digital model
``model``      what builds the model, e.g. ``{"name": "digits-cnn"}`` or ``{"name":
               "mlp", "n_in": 64, "hidden": [16], "n_out": 10}``, or ``null``; the
               names are resolved outside the core (:mod:`aimc.workloads.checkpoints`)
``run``        free-form JSON about how it was made (data set, method, HAT settings,
               history, accuracy, ...)
=============  =========================================================================

:func:`save_state` writes one, :func:`read_checkpoint` reads and checks one (a clear
``ValueError`` naming the file and the reason for an empty, truncated or corrupt file, a
directory, a foreign safetensors file, a bad header or NaN/Inf tensors),
:func:`load_state` loads one into a model built the same way. Files of the previous
version (metadata ``aimc_chips`` from ``save_state``, ``aimc_checkpoint`` from ``aimc
train``) are read as version 0.

Example:
    >>> import torch, aimc, tempfile, pathlib
    >>> net = aimc.convert(torch.nn.Linear(4, 2), "pcm")
    >>> aimc.program(net, seed=0)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "chip.safetensors"
    >>> aimc.nn.save_state(net, path, run={"note": "doctest"}) == path
    True
    >>> twin = aimc.convert(torch.nn.Linear(4, 2), "pcm")
    >>> ck = aimc.nn.load_state(twin, path)
    >>> ck.kind, ck.run["note"], torch.equal(twin.g_uS, net.g_uS)
    ('programmed', 'doctest', True)
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from aimc.chips import ChipSpec
from aimc.config import ConfigError
from aimc.nn.base import AnalogLayerMixin
from aimc.nn.convert import analog_layers
from aimc.outputs import claim_output

__all__ = ["FORMAT_VERSION", "KINDS", "Checkpoint", "save_state", "read_checkpoint", "load_state"]

FORMAT_VERSION = 2
KINDS = ("weights", "programmed")
_KEY = "aimc"
_LEGACY = ("aimc_chips", "aimc_checkpoint")  # metadata keys of version 0
#: Buffers of a programmed chip: in ``programmed`` checkpoints only.
_CHIP_STATE = ("g_uS", "drift_state", "out_scale", "t_s", "gdc_ref", "gdc", "read_seed", "prog_seed")
#: Trained digital parts of an analog layer (no digital counterpart).
_ANALOG_ONLY = ("out_gain", "input_range")


@dataclass(frozen=True)
class Checkpoint:
    """A checked checkpoint: its header fields and tensors (module doc).

    Attributes:
        path: the file. kind: one of :data:`KINDS`. state: the tensors (CPU).
        chips: ``{layer name: chip spec dict}``. model: the model's builder spec or None.
        run: free-form run information. version: format version the file was written in.
    """

    path: Path
    kind: str
    state: dict[str, torch.Tensor]
    chips: dict[str, dict[str, Any]] = field(default_factory=dict)
    model: dict[str, Any] | None = None
    run: dict[str, Any] = field(default_factory=dict)
    version: int = FORMAT_VERSION

    def chip(self) -> ChipSpec | None:
        """The one chip of all analog layers, or None for a digital model.

        Raises:
            ValueError: the layers use different chips, or a spec is invalid.
        """
        specs = {json.dumps(c, sort_keys=True) for c in self.chips.values()}
        if not specs:
            return None
        if len(specs) > 1:
            raise ValueError(f"{self.path}: its analog layers use {len(specs)} different chips; "
                             "build the model yourself and use aimc.nn.load_state")
        name, data = next(iter(self.chips.items()))
        try:
            return ChipSpec.from_dict(data, source=f"{self.path} (chip of layer '{name}')")
        except ConfigError as e:
            raise ValueError(" ".join(str(e).split())) from None


def _kind_of(model_or_state) -> str:
    if isinstance(model_or_state, nn.Module):
        return "programmed" if any(m.is_programmed for _, m in analog_layers(model_or_state)) else "weights"
    return "programmed" if any(k.rpartition(".")[2] == "read_seed" and v.numel() == 1 and int(v) >= 0
                               for k, v in model_or_state.items()) else "weights"


def _check_finite(state: Mapping[str, torch.Tensor], where: str) -> None:
    for k, v in state.items():
        if (v.is_floating_point() or v.is_complex()) and v.numel() and not bool(torch.isfinite(v).all()):
            raise ValueError(f"{where}: tensor '{k}' holds NaN or Inf values")


def save_state(model: nn.Module, path: str | os.PathLike, *, kind: str | None = None,
               model_spec: dict[str, Any] | None = None, run: dict[str, Any] | None = None,
               chips: Mapping[str, ChipSpec] | None = None, if_exists: str = "error") -> Path:
    """Write ``model``'s state and chips to a checkpoint (module doc).

    Args:
        model: a digital or converted model.
        path: the ``.safetensors`` file; missing directories are created.
        kind: ``"weights"`` (chip buffers left out) or ``"programmed"``; default:
            ``"programmed"`` if any analog layer is programmed, else ``"weights"``.
        model_spec: what builds the model (``{"name": ..., **arguments}``), if known.
        run: free-form JSON-able information about the run.
        chips: chips of layers that ``model`` holds digitally but that ran on a chip
            (e.g. an MLP trained on-chip, read back as weights), by layer name.
        if_exists: ``"error"``, ``"number"`` (write ``chip-1.safetensors``, ...) or
            ``"overwrite"`` (:func:`aimc.outputs.claim_output`).

    Returns:
        The path written (a numbered name with ``if_exists="number"``).

    Raises:
        FileExistsError: ``path`` exists and ``if_exists`` is ``"error"``.
        ValueError: ``path`` is a directory, bad ``kind``/``model_spec``/``run``, NaN/Inf
            tensors, or ``kind="programmed"`` of a model that is not programmed.
    """
    kind = kind or _kind_of(model)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    layers = dict(analog_layers(model))
    if kind == "programmed" and not (layers and all(m.is_programmed for m in layers.values())):
        raise ValueError("kind='programmed' needs a model whose analog layers are all programmed (aimc.program)")
    if model_spec is not None and not (isinstance(model_spec, dict) and isinstance(model_spec.get("name"), str)):
        raise ValueError(f"model_spec must be a dict with a 'name' string, got {model_spec!r}")
    tensors = {k: v.detach().cpu().clone(memory_format=torch.contiguous_format) for k, v in model.state_dict().items()
               if kind == "programmed" or not _is_chip_state(k, layers)}
    _check_finite(tensors, "save_state")
    specs = {**{n: c.to_dict() for n, c in (chips or {}).items()}, **{n: m.chip.to_dict() for n, m in layers.items()}}
    header = {"_version": FORMAT_VERSION, "kind": kind, "chips": specs,
              "model": model_spec, "run": run or {}}
    try:
        text = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"save_state: model_spec and run must be JSON-able (finite numbers): {e}") from None
    path = claim_output(path, if_exists=if_exists)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata={_KEY: text})
        os.replace(tmp, path)  # never leave a half-written checkpoint under the real name
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _is_chip_state(key: str, layers: Mapping[str, nn.Module]) -> bool:
    prefix, _, leaf = key.rpartition(".")
    return leaf in _CHIP_STATE and prefix in layers


def _header(meta: dict[str, str], where: str) -> dict[str, Any]:
    """The version-1 header of a file's metadata (version-0 files translated)."""
    if _KEY in meta:
        try:
            h = json.loads(meta[_KEY])
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: corrupt aimc header ({e})") from None
        if not isinstance(h, dict):
            raise ValueError(f"{where}: corrupt aimc header (not a JSON object)")
        v = h.get("_version")
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{where}: header field '_version' must be an integer >= 1, got {v!r}")
        if v > FORMAT_VERSION:
            raise ValueError(f"{where}: written by a newer aimc (checkpoint format {v}; this aimc reads up to "
                             f"{FORMAT_VERSION}); upgrade aimc to read it")
        return h
    try:
        if "aimc_chips" in meta:  # save_state before the format: full state, chips per layer
            return {"_version": 0, "kind": None, "chips": json.loads(meta["aimc_chips"]), "model": None, "run": {}}
        if "aimc_checkpoint" in meta:  # aimc train before the format: weights and a run dict
            run = json.loads(meta["aimc_checkpoint"])
            model = {"name": "mlp"} if isinstance(run, dict) and run.get("model") == "mlp" else None
            return {"_version": 0, "kind": "weights", "chips": {}, "model": model, "run": run}
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: corrupt aimc metadata ({e})") from None
    raise ValueError(f"{where} is not an aimc checkpoint (safetensors without the 'aimc' header); "
                     "aimc reads files written by aimc.nn.save_state or `aimc train`")


def _check_header(h: dict[str, Any], state: dict[str, torch.Tensor], where: str) -> None:
    if h["kind"] not in KINDS:
        raise ValueError(f"{where}: header field 'kind' must be one of {', '.join(KINDS)}, got {h['kind']!r}")
    chips = h.get("chips")
    if not isinstance(chips, dict) or not all(isinstance(c, dict) for c in chips.values()):
        raise ValueError(f"{where}: header field 'chips' must map layer names to chip specs, got {chips!r:.80}")
    model = h.get("model")
    if model is not None and not (isinstance(model, dict) and isinstance(model.get("name"), str)):
        raise ValueError(f"{where}: header field 'model' must be null or an object with a 'name', got {model!r:.80}")
    if not isinstance(h.get("run", {}), dict):
        raise ValueError(f"{where}: header field 'run' must be an object, got {h.get('run')!r:.80}")
    if h["kind"] == "programmed":
        lacking = [n for n in chips if _key(n, "read_seed") not in state]
        if not chips or lacking:
            raise ValueError(f"{where}: a 'programmed' checkpoint lacks the chip state of layer(s) "
                             f"{', '.join(map(repr, lacking)) or '(none listed)'}")


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read and check a checkpoint file (any version this aimc knows).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file and why it cannot be read: a directory, empty, truncated or
            corrupt, not an aimc checkpoint, a bad or newer header, NaN/Inf tensors.
    """
    p = Path(path)
    where = str(p)
    if not p.exists():
        raise FileNotFoundError(f"no such checkpoint: {p}")
    if p.is_dir():
        raise ValueError(f"{where} is a directory, not a checkpoint file")
    if p.stat().st_size == 0:
        raise ValueError(f"{where} is empty (0 bytes), not a safetensors checkpoint")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
            h = _header(meta, where)
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, RuntimeError, OverflowError) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise ValueError(f"{where} is not a readable safetensors file (truncated or corrupt: {reason})") from None
    if h["kind"] is None:
        h["kind"] = _kind_of(state)
    _check_header(h, state, where)
    _check_finite(state, where)
    return Checkpoint(p, h["kind"], state, h["chips"], h.get("model"), h.get("run") or {}, h["_version"])


def _fresh_chip_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The chip buffers of an unprogrammed layer (what a ``weights`` checkpoint leaves out)."""
    return {"g_uS": torch.empty(0, device=device), "drift_state": torch.empty(0, device=device),
            "out_scale": torch.empty(0, device=device), "t_s": torch.zeros((), dtype=torch.float64, device=device),
            "gdc_ref": torch.zeros((), device=device), "gdc": torch.ones((), device=device),
            "read_seed": torch.full((), -1, dtype=torch.int64, device=device),
            "prog_seed": torch.full((), -1, dtype=torch.int64, device=device)}


def _key(prefix: str, leaf: str) -> str:
    return f"{prefix}.{leaf}" if prefix else leaf


def load_state(model: nn.Module, source: str | os.PathLike | Checkpoint | Mapping[str, torch.Tensor], *,
               strict: bool = True) -> Checkpoint:
    """Load a checkpoint into ``model`` (built as the saved one was, digital or converted).

    * into an analog layer: a ``programmed`` checkpoint sets the chip as saved (the
      layer's chip must equal the saved one); a ``weights`` checkpoint sets the weights,
      output gains and input ranges and leaves the layer unprogrammed;
    * into a digital layer: the weights and bias; the analog-only parts of the file
      (output gains, input ranges, programmed chip state) are not used.

    Args:
        model: the model to fill.
        source: a file, a :class:`Checkpoint` from :func:`read_checkpoint`, or an
            in-memory ``state_dict`` (e.g. a trained converted model's).
        strict: every model tensor must be in the file and every file tensor used.

    Returns:
        The :class:`Checkpoint` (for a ``state_dict``: one without a file).

    Raises:
        ValueError: an unreadable file (see :func:`read_checkpoint`), a chip mismatch, or
            a file that does not fit the model (missing/unexpected tensors, shapes), named.
    """
    if isinstance(source, Checkpoint):
        ck = source
    elif isinstance(source, Mapping):
        ck = Checkpoint(Path("<state_dict>"), _kind_of(source), dict(source))
    else:
        ck = read_checkpoint(source)
    where = str(ck.path)
    layers = dict(analog_layers(model))
    if ck.kind == "programmed":
        for name, layer in layers.items():
            if name in ck.chips and _spec(ck.chips[name], where, name) != layer.chip:
                raise ValueError(f"{where}: layer '{name}' was programmed on chip {ck.chips[name].get('name')!r}, "
                                 f"the model uses {layer.chip.name!r}")
    own = model.state_dict()
    state = {}
    for k, v in ck.state.items():
        prefix, _, leaf = k.rpartition(".")
        if (leaf in _CHIP_STATE or leaf in _ANALOG_ONLY) and prefix not in layers and k not in own:
            continue  # an analog layer's own part; this model runs the layer digitally
        if ck.kind == "weights" and _is_chip_state(k, layers):
            continue
        state[k] = v
    for name, layer in layers.items():
        if ck.kind == "weights":  # unprogrammed; a digital model's file: unit gains, the chip's input range
            for leaf, v in _fresh_chip_state(layer.weight.device).items():
                state[_key(name, leaf)] = v
            state.setdefault(_key(name, "out_gain"), torch.ones_like(layer.out_gain))
            state.setdefault(_key(name, "input_range"), torch.zeros_like(layer.input_range))
        elif _key(name, "read_seed") in state:  # a chip of format <= 1: every device stored
            state.setdefault(_key(name, "prog_seed"), torch.full((), -1, dtype=torch.int64))
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if strict and (missing or unexpected):
        parts = [f"lacks {len(missing)} tensor(s) of the model ({_first(missing)})"] if missing else []
        parts += [f"has {len(unexpected)} the model lacks ({_first(unexpected)})"] if unexpected else []
        raise ValueError(f"{where} does not fit the model: it {' and '.join(parts)}")
    device = next(iter(own.values())).device if own else torch.device("cpu")
    try:
        model.load_state_dict({k: v.to(device) for k, v in state.items() if k in own}, strict=False)
    except RuntimeError as e:
        raise ValueError(f"{where} does not fit the model: {' '.join(str(e).split())}") from None
    return ck


def _first(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


def _spec(data: dict[str, Any], where: str, name: str) -> ChipSpec:
    try:
        return ChipSpec.from_dict(data, source=f"{where} (chip of layer '{name}')")
    except ConfigError as e:
        raise ValueError(" ".join(str(e).split())) from None
