"""The chip's digital units: the optional ``digital:`` section of a chip spec.

An AIMC chip is a system on chip: analog crossbar cores for the stationary weight
matrices, and digital units for everything else -- a host core (e.g. a RISC-V CPU), SIMD /
vector units beside the tiles, or a digital SRAM compute-in-memory macro. The section
states what those units cost, at their precision, so that :func:`aimc.cost.estimate` can
price (a) weight layers the compiler keeps digital, (b) the non-MVM work of a model
(element-wise ops, normalisation, softmax, pooling) and (c) the data moved between the
analog cores and the digital units. Units are in the field names.

Op kinds (:data:`HOST_OP_KINDS`) and what "one element" means for each (the counts that
``Graph.host_ops()`` and ``estimate(host_ops=...)`` use):

* element-wise arithmetic ``add``, ``sub``, ``mul``, ``div``, ``pow``, ``where``
  (select), ``scale`` (multiply by a constant, e.g. attention's ``1/sqrt(d)``): one
  element per *output* element;
* element-wise functions ``neg``, ``abs``, ``exp``, ``sqrt``, ``reciprocal``, ``erf`` and
  the activations ``relu``, ``gelu``, ``silu``, ``sigmoid``, ``tanh``: one per output element;
* ``softmax``, ``log_softmax``, ``layernorm``, ``rmsnorm``, ``batchnorm``: one per element
  of the tensor normalised (``batchnorm`` at inference: a folded scale and shift);
* ``maxpool``, ``avgpool``, ``mean``: one per *input* element read by the reduction;
* ``embedding``: one per output element (a table lookup: a read and a write).

These are the compute-op kinds of the op graph (``aimc.graph``); layout ops (reshape,
transpose, concat, ...) move no data through the digital units' arithmetic and are not
priced here.

A chip without a ``digital:`` section is priced with :data:`DEFAULT_DIGITAL`, a generic
14 nm SIMD unit whose numbers are derived below (:func:`default_op_costs`) and cited in
its ``sources`` -- the same policy as the ``cost:`` section. A chip that states the
section states every field: there are no per-field defaults.

Example:
    >>> d = DEFAULT_DIGITAL
    >>> d.mac_pJ, d.macs_per_ns, d.bytes_per_element
    (0.3, 1024.0, 2.0)
    >>> sorted(d.op_pJ) == sorted(HOST_OP_KINDS)
    True
"""
from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, model_validator

from aimc.config import BaseConfig

__all__ = ["DigitalConfig", "HOST_OP_KINDS", "OpKind", "DEFAULT_DIGITAL", "default_op_costs", "host_cpu_op_costs",
           "HOROWITZ_14NM_PJ"]

#: A non-MVM op kind the digital units price per element (module doc).
OpKind = Literal["add", "sub", "mul", "div", "pow", "where", "scale", "neg", "abs", "exp", "sqrt", "reciprocal",
                 "erf", "relu", "gelu", "silu", "sigmoid", "tanh", "softmax", "log_softmax", "layernorm",
                 "rmsnorm", "batchnorm", "maxpool", "avgpool", "mean", "embedding"]
#: The op kinds, in order (``Graph.host_ops()`` keys; keys of ``op_pJ``).
HOST_OP_KINDS: tuple[str, ...] = get_args(OpKind)

#: Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm: 16-bit FP add 0.4 pJ, mult
#: 1.1 pJ; 8 KB SRAM 64-bit read 10 pJ (1.25 pJ/byte); scaled to 14 nm / 0.8 V by
#: (14/45) * (0.8/0.9)^2 = 0.246 (the scaling of :data:`aimc.chips.cost_params.DEFAULT_SOURCES`).
HOROWITZ_14NM_PJ = {"fp16_add": 0.4 * 0.246, "fp16_mult": 1.1 * 0.246, "sram_byte": 1.25 * 0.246}

#: Per element: (FP16 adds, FP16 mults, 2-byte local-memory accesses). ASSUMED operation
#: counts of straightforward kernels: exp by range reduction and a degree-4 polynomial
#: (4 adds, 4 mults), log likewise, a reciprocal by Newton iterations (2 adds, 3 mults),
#: sqrt as x * rsqrt(x) (2 adds, 4 mults), erf by Abramowitz & Stegun 7.1.26 (exp, a
#: degree-5 polynomial, a reciprocal), pow as exp(y log x), tanh(x) = 2 sigmoid(2x) - 1,
#: GELU by its tanh approximation, softmax and layer norm in two passes over the row
#: (max/mean, then normalise), inference batch norm folded into scale + shift; neg, abs and
#: a compare cost one add; a select reads three operands; a lookup only reads and writes.
_OP_COUNTS = {
    "add": (1, 0, 3), "sub": (1, 0, 3), "mul": (0, 1, 3), "div": (2, 4, 3), "pow": (8, 9, 3),
    "where": (1, 0, 4), "scale": (0, 1, 2), "neg": (1, 0, 2), "abs": (1, 0, 2), "exp": (4, 4, 2),
    "sqrt": (2, 4, 2), "reciprocal": (2, 3, 2), "erf": (11, 12, 2), "relu": (1, 0, 2),
    "sigmoid": (7, 7, 2), "tanh": (9, 8, 2), "silu": (7, 8, 2), "gelu": (12, 13, 2),
    "softmax": (7, 5, 3), "log_softmax": (8, 4, 3), "layernorm": (4, 3, 5), "rmsnorm": (2, 3, 4),
    "batchnorm": (1, 1, 2), "maxpool": (1, 0, 1), "avgpool": (1, 0, 1), "mean": (1, 0, 1), "embedding": (0, 0, 2),
}


def default_op_costs(macs_per_ns: float, bytes_per_element: float = 2.0,
                     node_scale: float = 1.0) -> tuple[dict[str, float], dict[str, float]]:
    """Energy (pJ) and rate (elements/ns) per element of each op kind on a SIMD unit.

    ``E = s * (adds * E_add + mults * E_mult + accesses * bytes_per_element * E_sram_byte)``
    (:data:`HOROWITZ_14NM_PJ`; ``s = node_scale`` rescales them to another node, e.g.
    ``1 / 0.246`` for Horowitz's 45 nm), and ``rate = macs_per_ns / (adds + mults)``: every
    operation takes one lane-cycle of a unit that does ``macs_per_ns`` MACs per ns
    (ASSUMED; a MAC is one fused lane operation).

    Example:
        >>> e, r = default_op_costs(1024.0)
        >>> round(e["relu"], 4), r["relu"]
        (1.3284, 1024.0)
    """
    h = HOROWITZ_14NM_PJ
    energy = {k: node_scale * (a * h["fp16_add"] + m * h["fp16_mult"] + n * bytes_per_element * h["sram_byte"])
              for k, (a, m, n) in _OP_COUNTS.items()}
    rate = {k: macs_per_ns / max(1, a + m) for k, (a, m, n) in _OP_COUNTS.items()}
    return energy, rate


def host_cpu_op_costs(instr_pJ: float, instr_per_ns: float) -> tuple[dict[str, float], dict[str, float]]:
    """Energy (pJ) and rate (elements/ns) per element of each op kind on a scalar core.

    Every FP operation and every load or store of :data:`_OP_COUNTS` is one instruction
    (ASSUMED: a single-issue core with an FPU, no vector unit): ``E = n_instr * instr_pJ``,
    ``rate = instr_per_ns / n_instr``.

    Example:
        >>> e, r = host_cpu_op_costs(10.0, 0.5)
        >>> e["relu"], r["relu"]   # compare + load + store
        (30.0, 0.16666666666666666)
    """
    n = {k: a + m + acc for k, (a, m, acc) in _OP_COUNTS.items()}
    return {k: v * instr_pJ for k, v in n.items()}, {k: instr_per_ns / v for k, v in n.items()}


class DigitalConfig(BaseConfig):
    """The chip's digital units (module doc): one level deep, every field stated in a file.

    Attributes:
        kind: ``host_cpu`` (a general-purpose core, e.g. RISC-V), ``simd`` (vector units
            beside the tiles), ``sram_dcim`` (a digital SRAM compute-in-memory macro).
        description: what the units are, in one sentence.
        mac_bits: operand precision of the digital MACs (weights and activations).
        mac_pJ: energy per MAC at ``mac_bits``, operand delivery from the unit's local
            registers/buffers included (weight fetch from ``weight memory`` is separate).
        macs_per_ns: peak MAC rate of all digital units together.
        bytes_per_element: bytes of one activation element moved or processed (e.g. 1 for
            int8, 2 for FP16).
        op_pJ: energy per element of each non-MVM op kind (:data:`HOST_OP_KINDS`),
            operand reads and result write in local memory included.
        op_elements_per_ns: throughput of each op kind in ``op_pJ``, elements per ns.
        weight_sram_bytes: on-chip memory holding the weights of layers run digitally.
        sram_pJ_per_byte, sram_bytes_per_ns: energy and bandwidth of reading it.
        dram_pJ_per_byte, dram_bytes_per_ns: off-chip memory for digital weights that do not
            fit in ``weight_sram_bytes``; ``null``: no off-chip memory (such a model is an error).
        link_pJ_per_byte, link_bytes_per_ns: moving activations between the analog cores and
            the digital units (buffers + interconnect), per byte, each way.
        sources: where every number comes from; say which are published and which assumed.
    """

    kind: Literal["host_cpu", "simd", "sram_dcim"]
    description: str
    mac_bits: int = Field(ge=1, le=64)
    mac_pJ: float = Field(ge=0.0, le=1e6)
    macs_per_ns: float = Field(gt=0.0, le=1e9)
    bytes_per_element: float = Field(gt=0.0, le=16.0)
    op_pJ: dict[OpKind, Annotated[float, Field(ge=0.0, le=1e6)]]
    op_elements_per_ns: dict[OpKind, Annotated[float, Field(gt=0.0, le=1e9)]]
    weight_sram_bytes: int = Field(ge=0, le=1 << 50)
    sram_pJ_per_byte: float = Field(ge=0.0, le=1e6)
    sram_bytes_per_ns: float = Field(gt=0.0, le=1e9)
    dram_pJ_per_byte: float | None = Field(ge=0.0, le=1e6)
    dram_bytes_per_ns: float | None = Field(gt=0.0, le=1e9)
    link_pJ_per_byte: float = Field(ge=0.0, le=1e6)
    link_bytes_per_ns: float = Field(gt=0.0, le=1e9)
    sources: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self):
        if set(self.op_pJ) != set(self.op_elements_per_ns):
            diff = sorted(set(self.op_pJ) ^ set(self.op_elements_per_ns))
            raise ValueError(f"op_pJ and op_elements_per_ns must name the same op kinds; they differ in {', '.join(diff)}")
        if (self.dram_pJ_per_byte is None) != (self.dram_bytes_per_ns is None):
            raise ValueError("dram_pJ_per_byte and dram_bytes_per_ns: give both (off-chip memory) or neither (null)")
        return self


def _default() -> DigitalConfig:
    energy, rate = default_op_costs(1024.0)
    h = HOROWITZ_14NM_PJ
    return DigitalConfig(
        kind="simd", description="generic 14 nm FP16 SIMD unit (aimc default; no design behind it)",
        mac_bits=16, mac_pJ=0.3, macs_per_ns=1024.0, bytes_per_element=2.0,
        op_pJ={k: round(v, 4) for k, v in energy.items()}, op_elements_per_ns={k: round(v, 4) for k, v in rate.items()},
        weight_sram_bytes=1 << 20, sram_pJ_per_byte=round(h["sram_byte"], 4), sram_bytes_per_ns=64.0,
        dram_pJ_per_byte=162.5, dram_bytes_per_ns=17.0, link_pJ_per_byte=0.41, link_bytes_per_ns=32.0,
        sources=[
            "MAC 0.3 pJ and 1024 MAC/ns: the former cost.digital_mac_pJ / digital_macs_per_ns defaults, kept so that "
            "prices do not change; ASSUMED. For scale: Horowitz ISSCC 2014 (45 nm) 16-bit FP mult 1.1 pJ + add 0.4 pJ "
            "scaled to 14 nm / 0.8 V by 0.246 is 0.37 pJ.",
            "Element-wise ops: aimc.chips.digital.default_op_costs (ASSUMED operation counts x Horowitz 14 nm FP16 "
            "add 0.098 pJ, mult 0.27 pJ, SRAM 0.31 pJ/byte; one lane-cycle per operation).",
            "Weight memory: 1 MiB on-chip SRAM (ASSUMED) at 0.31 pJ/byte (Horowitz 8 KB SRAM 10 pJ per 64 bit x 0.246), "
            "64 B/ns (ASSUMED: 512-bit port at 1 GHz); DRAM 162.5 pJ/byte (Horowitz: 1.3 nJ per 64-bit DRAM access, "
            "not scaled: off-chip I/O), 17 B/ns (ASSUMED: LPDDR4 x32 at 4266 MT/s).",
            "Link between analog cores and digital units: SRAM write 0.31 + one interconnect hop 0.1 pJ/byte "
            "(as the cost defaults), 32 B/ns (ASSUMED: 256-bit bus at 1 GHz).",
        ])


#: Digital units of a chip without a ``digital:`` section (module doc; values in ``sources``).
DEFAULT_DIGITAL = _default()
