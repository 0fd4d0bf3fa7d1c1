"""What ``convert`` did: which layers run on tiles, which stay digital, and why.

:func:`conversion_report` describes any model, converted or not: one row per module that
owns parameters, with its parameters on tiles and digital and, for a digital one, the
reason. ``aimc.convert(model, chip, report=True)`` returns the same report for the
converted copy (with the layers its ``filter`` kept digital marked as such). A row with
``mvm=True`` is a matrix-vector product left digital (a grouped or transposed
convolution, an unknown layer with matrix weights, a filtered layer): ``convert`` warns
about those. Element-wise layers (norms) and lookups (``nn.Embedding``) are digital by
nature and not warned about.

Example:
    >>> import torch, aimc
    >>> net = torch.nn.Sequential(torch.nn.Embedding(10, 8), torch.nn.Linear(8, 4))
    >>> _, rep = aimc.convert(net, "ideal", report=True)
    >>> rep.params_on_tiles, rep.params_digital
    (32, 84)
    >>> print(rep)  # doctest: +NORMALIZE_WHITESPACE
    layer  type       where    on tiles  digital  detail
    0      Embedding  digital         0       80  a table lookup (one row read per token), not a matrix-vector product
    1      Linear     tiles          32        4  AnalogLinear on ideal (1 tile); bias digital
    on tiles: 32 parameters (27.6 %), digital: 84 parameters; matrix layers kept digital: none
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from aimc.nn.base import AnalogLayerMixin
from aimc.nn.moe import fused_experts_problem, is_fused_experts
from aimc.nn.table import CONVERSIONS, conversion_target

__all__ = ["LayerReport", "ConversionReport", "conversion_report", "digital_reason"]

_PERIPHERY = ("weight", "out_gain", "input_range")  # an analog layer's own non-model parameters besides bias


@dataclass(frozen=True)
class LayerReport:
    """One module that owns parameters.

    Attributes:
        name: qualified module name (``also: other names`` in ``detail`` when tied).
        kind: the module's class name (for an analog layer, the digital one it replaces).
        on_tiles: its matrix is programmed on tiles.
        params_on_tiles, params_digital: parameter counts.
        detail: the analog class and chip, or the reason it stays digital.
        mvm: a matrix-vector product kept digital (``convert`` warns about these).
    """

    name: str
    kind: str
    on_tiles: bool
    params_on_tiles: int
    params_digital: int
    detail: str
    mvm: bool = False


@dataclass
class ConversionReport:
    """Rows of :class:`LayerReport` plus totals; ``str()`` prints a table."""

    layers: list[LayerReport]
    notes: list[str] = field(default_factory=list)

    @property
    def params_on_tiles(self) -> int:
        return sum(r.params_on_tiles for r in self.layers)

    @property
    def params_digital(self) -> int:
        return sum(r.params_digital for r in self.layers)

    @property
    def digital_mvm(self) -> list[LayerReport]:
        """Matrix-vector layers that stay digital."""
        return [r for r in self.layers if r.mvm]

    def to_dict(self) -> dict[str, Any]:
        return {"params_on_tiles": self.params_on_tiles, "params_digital": self.params_digital,
                "layers": [asdict(r) for r in self.layers], "notes": list(self.notes)}

    def __str__(self) -> str:
        head = ("layer", "type", "where", "on tiles", "digital", "detail")
        rows = [(r.name or "<model>", r.kind, "tiles" if r.on_tiles else "digital", str(r.params_on_tiles),
                 str(r.params_digital), r.detail) for r in self.layers]
        w = [max(len(x[i]) for x in [head, *rows]) for i in range(5)]
        fmt = lambda x: "  ".join([x[0].ljust(w[0]), x[1].ljust(w[1]), x[2].ljust(w[2]),  # noqa: E731
                                   x[3].rjust(w[3]), x[4].rjust(w[4]), x[5]]).rstrip()
        total = self.params_on_tiles + self.params_digital
        share = f" ({100 * self.params_on_tiles / total:.1f} %)" if total else ""
        kept = ", ".join(r.name for r in self.digital_mvm) or "none"
        lines = [fmt(head), *map(fmt, rows),
                 f"on tiles: {self.params_on_tiles} parameters{share}, digital: {self.params_digital} parameters; "
                 f"matrix layers kept digital: {kept}", *self.notes]
        return "\n".join(lines)


def digital_reason(module: nn.Module) -> tuple[str, bool]:
    """Why ``module`` (not an analog layer) computes digitally: ``(reason, is_mvm)``."""
    own = [p for p in module.parameters(recurse=False)]
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return "a table lookup (one row read per token), not a matrix-vector product", False
    if type(module) in set(CONVERSIONS.values()):
        return f"digital parameters of {type(module).__name__} (biases added after the analog reads)", False
    if isinstance(module, nn.modules.conv._ConvNd) and module.groups != 1:
        return f"groups={module.groups}: block-diagonal weights; only groups=1 maps onto tiles", True
    if is_fused_experts(module):
        return f"MoE experts kept digital: {fused_experts_problem(module) or 'not converted'}", True
    target = conversion_target(module)
    if target is not None:
        return f"convertible to {target.__name__} but not converted (convert's filter, or not converted)", True
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return "3-d transposed convolution: no analog version (its col2im overlap-add is 2-d only)", True
    mats = [n for n, p in module.named_parameters(recurse=False) if p.dim() >= 2]
    if mats and _is_attention(module):
        return (f"unsupported attention variant: no analog version of {type(module).__name__}, its projection "
                f"matrices ({', '.join(mats)}) stay digital (map them to nn.Linear or add a CONVERSIONS entry)"), True
    if mats:
        return "no analog version of this layer type: its matrix weights stay digital", True
    return "element-wise (no matrix-vector product)", False


def _is_attention(module: nn.Module) -> bool:
    """An attention block by its class name (``...Attention``, ``...Attn``, as torch's,
    Hugging Face's and most research code name them)."""
    name = type(module).__name__.lower()
    return "attention" in name or name.endswith("attn")


def _analog_row(name: str, layer: AnalogLayerMixin) -> LayerReport:
    digital = sum(p.numel() for n, p in layer.named_parameters(recurse=False) if n not in _PERIPHERY)
    tiles = layer.layout.n_tiles
    bias = "; bias digital" if getattr(layer, "bias", None) is not None else ""
    base = next((c.__name__ for c in type(layer).__mro__[1:]
                 if c.__module__.startswith("torch.nn") and issubclass(c, nn.Module)), type(layer).__name__)
    return LayerReport(name, base, True, layer.analog_weight().numel(), digital,
                       f"{type(layer).__name__} on {layer.chip.name} ({tiles} tile{'s' if tiles > 1 else ''}){bias}")


def conversion_report(model: nn.Module, *, filtered: dict[str, str] | None = None,
                      notes: list[str] | None = None, reasons: dict[str, str] | None = None) -> ConversionReport:
    """Describe where ``model``'s parameters compute (see module doc).

    Args:
        model: any module, converted or not.
        filtered: ``{name: reason}`` of layers ``convert``'s filter kept digital.
        reasons: ``{name: reason}`` of matrix layers kept digital for a reason found
            while converting (e.g. an MoE router variant not supported).
        notes: extra lines printed under the table.
    """
    filtered = filtered or {}
    names: dict[int, list[str]] = {}
    for name, m in model.named_modules(remove_duplicate=False):
        names.setdefault(id(m), []).append(name)
    rows: list[LayerReport] = []
    inside: list[str] = []
    for name, m in model.named_modules():
        if any(p == "" or name.startswith(p + ".") for p in inside):  # computed with an enclosing row
            continue
        also = names[id(m)][1:]
        tied = f"; shared, also {', '.join(also)}" if also else ""
        if isinstance(m, AnalogLayerMixin):
            inside.append(name)
            row = _analog_row(name, m)
            rows.append(LayerReport(**{**asdict(row), "detail": row.detail + tied}))
            continue
        whole = conversion_target(m) is not None  # converted as a whole, or digital as a whole
        own = list(m.parameters(recurse=whole))
        if not own:
            continue
        if name in filtered:
            reason, mvm = filtered[name], True
        elif reasons and name in reasons:
            reason, mvm = reasons[name], True
        else:
            reason, mvm = digital_reason(m)
        rows.append(LayerReport(name, type(m).__name__, False, 0, sum(p.numel() for p in own), reason + tied, mvm))
        if whole:
            inside.append(name)  # e.g. a digital MultiheadAttention's out_proj computes with it
    return ConversionReport(rows, list(notes or []))
