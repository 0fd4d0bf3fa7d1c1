"""Whole-model entry points: ``convert``, ``program``, ``drift``, ``compensate``.

Example:
    >>> import torch, aimc
    >>> net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> analog = aimc.convert(net, "pcm-hermes")
    >>> aimc.program(analog, seed=1)
    >>> aimc.drift(analog, t_s=86400.0)
    >>> aimc.compensate(analog)
    >>> analog(torch.randn(4, 8)).shape
    torch.Size([4, 2])
"""
from __future__ import annotations

import copy
import warnings
from typing import Any, Callable, Iterator, Literal, Mapping, Protocol, cast, overload

import torch
from torch import nn

from aimc.chips import ChipSpec, load
from aimc.nn.base import STORES, AnalogLayerMixin
from aimc.nn.kernel_attention import KernelAttentionConfig, use_kernel_attention
from aimc.nn.moe import AnalogTopKRouter, moe_routers, router_problem
from aimc.nn.report import ConversionReport, conversion_report
from aimc.nn.table import CONVERSIONS, conversion_target
from aimc.physics.drift import check_time_s

__all__ = ["CONVERSIONS", "convert", "conversion_target", "program", "drift", "compensate", "analog_layers",
           "tile_capacity_note"]

class _FromDigital(Protocol):
    """An analog class of :data:`CONVERSIONS`: ``from_digital(layer, chip)`` builds its copy."""

    def from_digital(self, layer: Any, chip: ChipSpec) -> nn.Module: ...


def analog_layers(model: nn.Module) -> Iterator[tuple[str, AnalogLayerMixin]]:
    """``(name, layer)`` for every analog layer of ``model``, in module order."""
    for name, m in model.named_modules():
        if isinstance(m, AnalogLayerMixin):
            yield name, m


@overload
def convert(model: nn.Module, chip: ChipSpec | str, *, filter: Callable[[str, nn.Module], bool] | None = None,
            report: Literal[False] = False, attention: str | KernelAttentionConfig = "softmax",
            router: Literal["digital", "analog"] = "digital") -> nn.Module: ...
@overload
def convert(model: nn.Module, chip: ChipSpec | str, *, filter: Callable[[str, nn.Module], bool] | None = None,
            report: Literal[True], attention: str | KernelAttentionConfig = "softmax",
            router: Literal["digital", "analog"] = "digital") -> tuple[nn.Module, ConversionReport]: ...
@overload
def convert(model: nn.Module, chip: ChipSpec | str, *, filter: Callable[[str, nn.Module], bool] | None = None,
            report: bool, attention: str | KernelAttentionConfig = "softmax",
            router: Literal["digital", "analog"] = "digital") -> nn.Module | tuple[nn.Module, ConversionReport]: ...
def convert(
    model: nn.Module,
    chip: ChipSpec | str,
    *,
    filter: Callable[[str, nn.Module], bool] | None = None,
    report: bool = False,
    attention: str | KernelAttentionConfig = "softmax",
    router: Literal["digital", "analog"] = "digital",
) -> nn.Module | tuple[nn.Module, ConversionReport]:
    """Return a copy of ``model`` whose matrix-vector layers run on ``chip``'s tiles.

    Every module whose class (or a base class) is in :data:`CONVERSIONS` is replaced by
    its analog version: ``nn.Linear`` (and subclasses such as attention's
    ``NonDynamicallyQuantizableLinear``), ``nn.Conv1d/2d/3d`` (groups=1),
    ``nn.MultiheadAttention`` (projections on tiles, ``Q K^T``/softmax/``P V`` digital),
    ``nn.LSTM``/``nn.GRU``/``nn.RNN`` (input-hidden and hidden-hidden matrices on tiles),
    mixture-of-experts blocks (:mod:`aimc.nn.moe`: experts as analog FFNs, Hugging Face's
    fused 3-D experts included; the router as ``router`` says).
    A module used under several names is converted once and stays shared. Torch's fused
    transformer fast paths never bypass the analog layers: ``nn.TransformerEncoder`` copies
    get ``use_nested_tensor = False``, an ``nn.TransformerEncoderLayer`` takes its plain
    path because its analog layers carry forward pre-hooks and an analog attention has no
    ``in_proj_bias``.

    Layers that stay digital: those ``filter`` rejects, grouped and transposed
    convolutions, unknown layer types with matrix weights (a ``UserWarning`` names them
    all), and by nature lookups (``nn.Embedding``) and element-wise layers (norms).

    Args:
        model: any ``nn.Module``; it is not modified.
        chip: preset name, YAML path or :class:`ChipSpec`.
        filter: ``filter(qualified_name, module) -> bool``; layers for which it returns
            False stay digital (as a whole: a filtered attention keeps its ``out_proj``).
        report: also return a :class:`~aimc.nn.report.ConversionReport` (printable) of
            what runs on tiles and what stays digital, and why.
        attention: ``"softmax"`` keeps each ``nn.MultiheadAttention``'s softmax;
            ``"kernel"`` (or a :class:`~aimc.nn.kernel_attention.KernelAttentionConfig`)
            first replaces it by kernel-approximated attention
            (:func:`~aimc.nn.kernel_attention.use_kernel_attention`), whose frozen random
            projection then goes on tiles with the other projections.
        router: ``digital`` (default): MoE routers (:func:`aimc.nn.moe.moe_routers`) stay
            digital, so routing is exact (a router is tiny and a noisy logit flips a
            token's expert); ``analog``: routers go on tiles and route by the chip's logits.

    Returns:
        The analog copy, or ``(copy, report)`` with ``report=True``.
    """
    if router not in ("digital", "analog"):
        raise ValueError(f"convert: router must be 'digital' or 'analog', got {router!r}")
    chip = load(chip)
    if isinstance(attention, KernelAttentionConfig) or attention == "kernel":
        new = use_kernel_attention(model, attention if isinstance(attention, KernelAttentionConfig) else None)
    elif attention == "softmax":
        new = copy.deepcopy(model)
    else:
        raise ValueError(f"convert: attention must be 'softmax', 'kernel' or a KernelAttentionConfig, got {attention!r}")
    done: dict[int, nn.Module] = {}  # id(original child) -> its analog version (tied modules)
    filtered: dict[str, str] = {}
    reasons: dict[str, str] = {}
    routers = moe_routers(new)
    shared = _shared_params(new)

    def convert_one(qual: str, m: nn.Module) -> nn.Module | None:
        if qual in routers:
            if router == "digital":
                filtered[qual] = "MoE router kept digital (convert's router='digital', the default): exact routing"
                return m
            if conversion_target(m) is None:  # an HF router with a raw weight
                why, _ = router_problem(m)
                if why is not None:
                    reasons[qual] = f"MoE router variant not supported: {why}"
                    return m
                return AnalogTopKRouter.from_digital(m, chip)
        target = conversion_target(m)
        if target is None:
            return None
        if filter is not None and not filter(qual, m):
            filtered[qual] = f"kept digital by convert's filter (convertible to {target.__name__})"
            return m
        if isinstance(m, nn.modules.conv._ConvNd) and m.groups != 1:
            return None  # reported by digital_reason
        return _keep_ties(cast(_FromDigital, target).from_digital(m, chip), m, shared)

    def visit(parent: nn.Module, prefix: str) -> None:
        for name, child in list(parent._modules.items()):  # every name, tied modules included
            if child is None:
                continue
            qual = f"{prefix}{name}"
            if id(child) in done:
                setattr(parent, name, done[id(child)])
                continue
            out = convert_one(qual, child)
            if out is None:
                visit(child, qual + ".")
                out = child
            elif out is not child:
                setattr(parent, name, out)
            done[id(child)] = out

    root = convert_one("", new)
    if root is not None and root is not new:
        new = root
    elif root is None:
        visit(new, "")
    notes = _no_fast_paths(new)
    capacity = tile_capacity_note(new, chip)
    notes += [capacity] if capacity else []
    rep = conversion_report(new, filtered=filtered, notes=notes, reasons=reasons)
    kept = [r for r in rep.digital_mvm if r.name not in filtered]
    if kept:
        warnings.warn("convert: matrix layers stay digital: " + "; ".join(
            f"{r.name or '<model>'} ({r.kind}: {r.detail})" for r in kept)
            + ". Print aimc.convert(..., report=True)[1] for the full summary.", UserWarning, stacklevel=2)
    if capacity:
        warnings.warn("convert: " + capacity, UserWarning, stacklevel=2)
    return (new, rep) if report else new


def _shared_params(model: nn.Module) -> set[int]:
    """``id`` of every parameter that more than one module of ``model`` holds (tied weights)."""
    seen: set[int] = set()
    shared: set[int] = set()
    for m in model.modules():
        for p in m._parameters.values():
            if p is not None:
                (shared if id(p) in seen else seen).add(id(p))
    return shared


def _keep_ties(new: nn.Module, old: nn.Module, shared: set[int]) -> nn.Module:
    """The analog ``new`` takes ``old``'s own weight and bias where another module holds
    them too (``convert`` works on a copy of the model, so ``old``'s tensors are that
    copy's): a language model's ``lm_head`` tied to its token embedding stays tied, one
    tensor that the tiles read and the embedding looks up digitally, and hardware-aware
    training updates it from both uses, as training the digital model does."""
    for name in ("weight", "bias"):
        p, q = old._parameters.get(name), new._parameters.get(name)
        if p is not None and q is not None and id(p) in shared and p.shape == q.shape and p.dtype == q.dtype:
            setattr(new, name, p)
    return new


def tile_capacity_note(model: nn.Module, chip: ChipSpec) -> str | None:
    """A sentence when the analog layers of ``model`` need more tiles than ``chip`` has
    (``chip.n_tiles``), else None. Each layer takes ``layout.n_tiles`` tiles of its own
    (no two layers share a tile); a tied layer counts once.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     big = convert(torch.nn.Linear(2048, 8192), "ideal")  # 8 x 32 tiles of 256 x 256
        >>> tile_capacity_note(big, load("ideal"))[:34], len(caught)
        ('the model needs 256 tiles on ideal', 1)
    """
    needed = sum(layer.layout.n_tiles for _, layer in analog_layers(model))
    if needed <= chip.n_tiles:
        return None
    return (f"the model needs {needed} tiles on {chip.name} ({chip.rows} x {chip.cols}), more than the chip's "
            f"n_tiles = {chip.n_tiles} ({needed / chip.n_tiles:.1f}x): simulated as if the chip had them all "
            "(a real chip would re-program tiles between layers, or needs a spec with more tiles)")


def _no_fast_paths(model: nn.Module) -> list[str]:
    """Turn off torch's nested-tensor fast path of encoders that hold analog layers."""
    notes = []
    for name, m in model.named_modules():
        if isinstance(m, nn.TransformerEncoder) and any(True for _ in analog_layers(m)):
            if getattr(m, "use_nested_tensor", False):
                notes.append(f"{name or '<model>'}: nested-tensor fast path off (it would bypass the analog layers)")
            m.use_nested_tensor = False
    return notes


def _layers_or_error(model: nn.Module, what: str) -> list[AnalogLayerMixin]:
    layers = [m for _, m in analog_layers(model)]
    if not layers:
        raise ValueError(f"{what}: the model has no analog layers; call aimc.convert(model, chip) first")
    return layers


def program_generators(model: nn.Module, seed: int, what: str = "program"
                       ) -> Iterator[tuple[AnalogLayerMixin, torch.Generator]]:
    """``(layer, generator)`` for every analog layer, in the order and with the random
    streams of :func:`program` with ``seed`` (one chip; also :mod:`aimc.nn.montecarlo`)."""
    layers = _layers_or_error(model, what)
    device = next(iter(layers)).weight.device
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    for layer in layers:
        if device.type == "cpu":
            yield layer, gen
        else:  # device draws from a device generator seeded from the CPU stream
            dgen = torch.Generator(device=layer.weight.device)
            dgen.manual_seed(int(torch.randint(0, 2**62, (1,), generator=gen)))
            yield layer, dgen


def program(model: nn.Module, seed: int = 0, faults: Mapping[str, torch.Tensor] | None = None,
            store: str = "full") -> None:
    """Program every analog layer (draw programming noise once); same seed, same chip.

    ``faults``: fault codes per analog layer name (as :func:`analog_layers` names them) of
    one die, from :func:`aimc.tiles.faults.repair`; a name that is not an analog layer is
    an error. ``store``: ``"full"`` keeps each device's programmed state; ``"lean"`` keeps
    a seed per layer and redraws the state, bit for bit, when the time changes
    (:mod:`aimc.nn.base`): about a third of the memory, and a chip of the same statistics
    but other draws than ``"full"`` with the same seed; no fault maps."""
    if store not in STORES:
        raise ValueError(f"program: store must be one of {', '.join(STORES)}, got {store!r}")
    _layers_or_error(model, "program")
    faults = dict(faults or {})
    names = {id(m): n for n, m in analog_layers(model)}
    unknown = sorted(set(faults) - set(names.values()))
    if unknown:
        raise ValueError(f"program: faults given for {unknown}, which are not analog layers of the model")
    for layer, gen in program_generators(model, seed):
        layer.program_analog(gen, faults.get(names[id(layer)]), store=store)


def drift(model: nn.Module, t_s: float) -> None:
    """Set the time since programming of every analog layer (seconds, finite, >= 0).

    Raises:
        TypeError: ``t_s`` is not a number; ValueError: negative, infinite or NaN.
    """
    t_s = check_time_s(t_s)  # before any layer changes
    for layer in _layers_or_error(model, "drift"):
        layer.set_time(t_s)


def compensate(model: nn.Module, enable: bool = True) -> None:
    """Global drift compensation of every analog layer at its current time."""
    for layer in _layers_or_error(model, "compensate"):
        layer.compensate_drift(enable)
