"""The op graph of decoder-LLM inference on a 3D chip, built one decoding step at a time.

Ops and their resources: a **tier MVM** (one block of a matrix, on its tile: one at a time
per tile), a **digital op** (add, layer norm, activation, sampling: on one of the digital
units), **attention** (one op per layer and step over all the step's query tokens: on an
attention unit). Data moving between a tile and a unit is an edge delay (``comm_ns``), as in
IBM threedsim's ``graph/processing.py::add_comm_nodes``: an MVM's output crosses once
(one transfer shared by its consumers), a digital op's output once per MVM consumer, and
the sampling op's inputs once together; digital-to-digital edges are free.

Per token and layer (threedsim's ``TransformerDecoderLayer``, post-norm): ``o`` = out
projection of the attention output, ``r1 = o + residual``, ``a = LN(r1)``, FFN or MoE of
``a`` (the router and, in parallel, the chosen experts' ``ffn1``, activation, ``ffn2``;
``top_k > 1``: their sum; the gate values join at the residual add, as threedsim traces it),
``r2 = ffn + r1``, then ``LN(r2)`` feeds the next layer's ``q, k, v``; the embedding lookup
(one tier read per column block) plus the positional add feeds layer 0; the last token's
``r2`` of the last layer goes through the final LN, the LM head and the sampling op, whose
result starts the next step. A matrix of ``n_v > 1`` row blocks adds its partial sums by a
chain of ``n_v - 1`` digital adds per column block.

Example:
    >>> g = OpGraph()
    >>> a = g.op(-1, 0, 10, (0, 0), "add", 10.0); b = g.op(3, 0, 100, (0, 0), "mvm", 10.0)
    >>> g.edge(a, False, b, True), g.energy_nJ["comm"] > 0
    (10, True)
"""
from __future__ import annotations

from typing import Callable

from aimc.workloads.llm3d.costs import UnitCosts

__all__ = ["OpGraph", "DIGITAL", "ATTENTION"]

#: Resource codes of non-tile ops (a tile op's resource is its tile index >= 0).
DIGITAL, ATTENTION = -1, -2


class OpGraph:
    """Parallel lists, one entry per op (ids are indices); energies summed as ops are made
    (every op runs exactly once, so the active energy is known before scheduling).

    Attributes:
        res, tier, dur, prio, npred, succ, embed: resource, tier (MVMs), duration (ns),
            priority ``(sequence, token)``, unfinished inputs, ``[(op, delay_ns)]``, is an
            embedding lookup (not counted as a tile conflict, as threedsim).
        on_done: op -> callback ``(time_ns)`` (the sampling op starts the next step).
        energy_nJ, busy_ns: totals per category (``mvm``, ``comm``, ``add``, ...).
    """

    def __init__(self, comm_ns: int = 10, comm_nJ: float = 0.04096):
        self.res: list[int] = []
        self.tier: list[int] = []
        self.dur: list[int] = []
        self.prio: list[tuple[int, int]] = []
        self.npred: list[int] = []
        self.succ: list[list[tuple[int, int]]] = []
        self.embed: list[bool] = []
        self.on_done: dict[int, Callable[[int], None]] = {}
        self.energy_nJ: dict[str, float] = {"comm": 0.0}
        self.busy_ns: dict[str, int] = {"comm": 0}
        self.counts: dict[str, int] = {"comm": 0}
        self.comm_ns, self.comm_nJ = comm_ns, comm_nJ

    def op(self, res: int, tier: int, dur: int, prio: tuple[int, int], kind: str, energy_nJ: float,
           embed: bool = False) -> int:
        """A new op; returns its id."""
        self.res.append(res)
        self.tier.append(tier)
        self.dur.append(dur)
        self.prio.append(prio)
        self.npred.append(0)
        self.succ.append([])
        self.embed.append(embed)
        self.energy_nJ[kind] = self.energy_nJ.get(kind, 0.0) + energy_nJ
        self.busy_ns[kind] = self.busy_ns.get(kind, 0) + dur
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return len(self.res) - 1

    def comm(self, n: int = 1) -> None:
        """Account ``n`` vector transfers."""
        self.energy_nJ["comm"] += n * self.comm_nJ
        self.busy_ns["comm"] += n * self.comm_ns
        self.counts["comm"] += n

    def edge(self, src: int, src_analog: bool, dst: int, dst_analog: bool, to_sample: bool = False) -> int:
        """Connect ``src -> dst`` with the transfer rule of the module doc; returns the delay.
        An MVM's own transfer is accounted when the MVM is made (:meth:`mvm_out`)."""
        delay = self.comm_ns if (src_analog or dst_analog or to_sample) else 0
        if dst_analog and not src_analog:
            self.comm()
        self.succ[src].append((dst, delay))
        self.npred[dst] += 1
        return delay


def digital(g: OpGraph, costs: UnitCosts, kind: str, n: int, prio: tuple[int, int],
            preds: list[tuple[int, bool]], to_sample: bool = False) -> int:
    """A digital op of ``kind`` over ``n`` elements after ``preds`` (``(op, analog)``)."""
    ns, nj = costs.digital(kind, n)
    o = g.op(DIGITAL, 0, ns, prio, kind, nj)
    for p, analog in preds:
        g.edge(p, analog, o, False, to_sample)
    return o
