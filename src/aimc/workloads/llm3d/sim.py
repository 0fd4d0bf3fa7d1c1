"""Event-driven simulation of decoder-LLM inference on a 3D AIMC chip.

Every op of :mod:`~aimc.workloads.llm3d.graph` waits for its inputs, then for its
resource: its tile (one tier MVM at a time per tile; a change of the tile's active tier
adds ``switch_ns``), a digital unit or an attention unit. Among the ops waiting for a
resource the one of highest priority ``(sequence, token)`` starts first (depth-first over
sequences and tokens, ties in order of readiness), as in IBM threedsim's
``inference/scheduler.py``. The clock is an integer number of ns; a heap holds the
finishing ops and the arriving transfers, so the cost is ``O(ops log ops)`` whatever the
chip size. The graph is built one decoding step at a time (a step of a sequence is made
when the previous step's sampling op finishes), so memory stays bounded.

Energy = the ops' active energy + static power x time: ``(digital + attention units) x
unit_static_W`` (+ the DRAM's idle power with a KV cache), threedsim's ``passive_power``.

A *tile conflict* is one pair (waiting MVM, MVM running on its tile while it waits): an
MVM that is ready (all inputs arrived) but finds its tile busy counts one conflict for the
MVM running then, and one more for every MVM that starts on the tile before it; an MVM whose
input arrives at the ns its tile frees does not wait and counts none; embedding lookups are
not counted. threedsim's ``num_conflicts`` means to count the same pairs, but also counts
every MVM still running at a later scheduling step as conflicting with itself (its
``_pick_source_node`` marks the running op's tile active, then tests the op against it)
and misses a wait when the waiting op precedes the running one in its ready list, so
its figure is mostly about one per MVM (docs/guide/llm3d.md compares the two).

Example:
    >>> from aimc.chips import load
    >>> from aimc.workloads.llm3d.model import load_model
    >>> from aimc.workloads.llm3d.mapping import map_model
    >>> from aimc.workloads.llm3d.costs import UnitCosts
    >>> cfg, chip = load_model("threedsim-readme"), load("3d-nvm")
    >>> r = simulate_run(cfg, map_model(cfg, chip, pos_embedding_rows=12), UnitCosts.threedsim(),
    ...                  prompt=1, generate=11, kv_cache=False)
    >>> r.time_ns, r.counts["mvm"]
    (45739, 2464)
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aimc.workloads.llm3d.costs import UnitCosts
from aimc.workloads.llm3d.graph import ATTENTION, DIGITAL, OpGraph, digital
from aimc.workloads.llm3d.mapping import Placement
from aimc.workloads.llm3d.model import LLMConfig

__all__ = ["Router", "SimResult", "simulate_run"]


class Router:
    """Which experts each token takes: given choices, or draws from a density.

    Args:
        n_experts, top_k: the MoE layer.
        density: ``top_k = 1``: probabilities of each expert (``E``); ``top_k = 2``: the
            co-activation ``P[i, j]`` (``E x E``, threedsim's ``_sample``); either one per
            layer (a leading ``layers`` axis, indexed by the layer); ``None``: ``top_k``
            distinct experts uniformly.
        choices: ``(seq_len, token, layer) -> experts``, e.g. recorded from a real gate or
            from threedsim's trace; overrides the draws where given.
        seed: the draws' generator.
    """

    def __init__(self, n_experts: int, top_k: int, density: np.ndarray | None = None,
                 choices: dict[tuple[int, int, int], list[int]] | None = None, seed: int = 0):
        self.e, self.k, self.choices = n_experts, top_k, choices or {}
        self.density: np.ndarray | None = None
        if density is not None:
            d = np.asarray(density, dtype=float)
            one = (n_experts,) * top_k
            if top_k > 2 or d.shape[-top_k:] != one or d.ndim not in (top_k, top_k + 1):
                raise ValueError(f"Router: density for top-{top_k} of {n_experts} experts must be {one} or "
                                 f"(layers, {', '.join(map(str, one))}), got {d.shape}")
            per_layer = d.reshape(d.shape[0] if d.ndim > top_k else 1, -1)
            self.density = per_layer / per_layer.sum(axis=1, keepdims=True)  # (layers or 1, E or E*E)
        self.rng = np.random.default_rng(seed)

    def __call__(self, seq_len: int, token: int, layer: int) -> list[int]:
        got = self.choices.get((seq_len, token, layer))
        if got is not None:
            return list(got)
        if self.density is None:
            return [int(i) for i in self.rng.permutation(self.e)[: self.k]]
        p = self.density[layer if len(self.density) > 1 else 0]
        flat = int(self.rng.choice(p.size, p=p))
        return [flat] if self.k == 1 else [flat // self.e, flat % self.e]


@dataclass
class SimResult:
    """What a run cost. Times in ns, energies in nJ.

    Attributes:
        time_ns: makespan; energy_nJ: total; energy_breakdown_nJ: per op kind + ``static``.
        busy_ns, counts: summed op durations and op counts per kind.
        tile_conflicts: module doc. tile_busy_ns: MVM time per tile.
        tokens: tokens generated (all sequences). tiles_used: tiles holding weights.
    """

    time_ns: int
    energy_nJ: float
    energy_breakdown_nJ: dict[str, float]
    busy_ns: dict[str, int]
    counts: dict[str, int]
    tile_conflicts: int
    tile_busy_ns: np.ndarray
    tokens: int
    tiles_used: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / (self.time_ns * 1e-9)

    @property
    def J_per_token(self) -> float:
        return self.energy_nJ * 1e-9 / self.tokens

    @property
    def utilization(self) -> float:
        """Mean busy fraction of the tiles that hold weights."""
        return float(self.tile_busy_ns.sum() / (max(1, self.tiles_used) * self.time_ns))


class _Builder:
    """Makes the ops of one decoding step of one sequence (module doc of ``graph``)."""

    def __init__(self, g: OpGraph, cfg: LLMConfig, place: Placement, costs: UnitCosts, router: Router | None,
                 kv_cache: bool):
        self.g, self.cfg, self.place, self.c, self.router, self.kv = g, cfg, place, costs, router, kv_cache

    def linear(self, name: str, prio: tuple[int, int], preds: list[tuple[int, bool]], row_block: int | None = None,
               to_sample: bool = False) -> list[tuple[int, bool]]:
        g, c = self.g, self.c
        tiles, tiers = self.place.blocks[name]
        rows = [row_block] if row_block is not None else range(tiles.shape[0])
        out = []
        for j in range(tiles.shape[1]):
            col: list[int] = []
            for i in rows:
                o = g.op(int(tiles[i, j]), int(tiers[i, j]), c.mvm_ns, prio, "mvm", c.mvm_nJ, embed=name == "embed")
                if not (to_sample and len(rows) == 1):
                    g.comm()
                for p, analog in preds:
                    g.edge(p, analog, o, True)
                col.append(o)
            acc, acc_analog = col[0], True
            for o in col[1:]:
                acc = digital(g, c, "add", self.place_cols, prio, [(acc, acc_analog), (o, True)])
                acc_analog = False
            out.append((acc, acc_analog))
        return out

    @property
    def place_cols(self) -> int:
        return int(self.c.comm_nJ / (1e-5 * 8)) if self.c.fixed_ops is not None else self.cfg.d_model

    def step(self, seq: int, positions: list[int], seq_len: int, after: int | None) -> int:
        """Ops of one step of sequence ``seq`` computing ``positions`` (``seq_len`` in the
        context); ``after``: the previous step's sampling op. Returns the new sampling op."""
        cfg, c, g = self.cfg, self.c, self.g
        d, f = cfg.d_model, cfg.d_ff
        n_emb = self.place.blocks["embed"][0].shape[0]
        qkv: dict[int, list[tuple[int, bool]]] = {}
        resid: dict[int, tuple[int, bool]] = {}
        for t in positions:
            pre = [(after, False)] if after is not None else []
            emb = self.linear("embed", (seq, t), pre, row_block=(7919 * t + 104729 * seq) % n_emb)
            x0 = digital(g, c, "add", d, (seq, t), emb)
            resid[t] = (x0, False)
            qkv[t] = [p for m in "qkv" for p in self.linear(f"l0.{m}", (seq, t), [(x0, False)])]
        final: tuple[int, bool] = (-1, False)
        for layer in range(cfg.n_layers):
            ns, nj, dram_ns, dram_nJ = c.attention(len(positions), seq_len, d, cfg.n_heads, self.kv, d_kv=cfg.d_kv)
            att = g.op(ATTENTION, 0, ns, (seq, 0), "attention", nj - dram_nJ)
            g.energy_nJ["kv_dram"] = g.energy_nJ.get("kv_dram", 0.0) + dram_nJ
            g.busy_ns["kv_dram"] = g.busy_ns.get("kv_dram", 0) + dram_ns
            for t in positions:
                for p, analog in qkv[t]:
                    g.edge(p, analog, att, False)
            last = layer == cfg.n_layers - 1
            for t in positions:
                pr = (seq, t)
                o = self.linear(f"l{layer}.o", pr, [(att, False)])
                r1 = digital(g, c, "add", d, pr, o + [resid[t]])
                a = digital(g, c, "layernorm", d, pr, [(r1, False)])
                ffn = self.ffn(layer, pr, seq_len, (a, False))
                r2 = digital(g, c, "add", d, pr, ffn + [(r1, False)])
                if last:
                    final = (r2, False)
                else:
                    n3 = digital(g, c, "layernorm", d, pr, [(r2, False)])
                    resid[t] = (r2, False)
                    qkv[t] = [p for m in "qkv" for p in self.linear(f"l{layer + 1}.{m}", pr, [(n3, False)])]
        pr = (seq, positions[-1])
        fn = digital(g, c, "layernorm", d, pr, [final])
        logits = self.linear("lm_head", pr, [(fn, False)], to_sample=True)
        g.comm()
        return digital(g, c, "sample", cfg.vocab_size, pr, logits, to_sample=True)

    def ffn(self, layer: int, pr: tuple[int, int], seq_len: int, a: tuple[int, bool]) -> list[tuple[int, bool]]:
        g, c, cfg = self.g, self.c, self.cfg
        if not cfg.is_moe_layer(layer):
            return self.linear(f"l{layer}.ffn2", pr, [(self.hidden(f"l{layer}.", pr, a), False)])
        assert self.router is not None
        gate = self.linear(f"l{layer}.router", pr, [a])
        outs: list[tuple[int, bool]] = []
        for e in self.router(seq_len, pr[1], layer):
            y = self.linear(f"l{layer}.e{e}.ffn2", pr, [(self.hidden(f"l{layer}.e{e}.", pr, a), False)])
            outs = y if not outs else [(digital(g, c, "add", cfg.d_ff, pr, outs + y), False)]
        return outs + gate  # the gate values scale the experts' outputs: the residual add waits for them

    def hidden(self, pre: str, pr: tuple[int, int], a: tuple[int, bool]) -> int:
        """The FFN's hidden activation: ``act(W1 a)``, or SwiGLU's ``silu(W1 a) * W3 a``."""
        g, c, f = self.g, self.c, self.cfg.d_ff
        if self.cfg.activation != "swiglu":
            return digital(g, c, self.cfg.activation, f, pr, self.linear(pre + "ffn1", pr, [a]))
        s = digital(g, c, "silu", f, pr, self.linear(pre + "ffn1", pr, [a]))
        return digital(g, c, "mul", f, pr, [(s, False)] + self.linear(pre + "ffn3", pr, [a]))


def simulate_run(cfg: LLMConfig, place: Placement, costs: UnitCosts, batch: int = 1, prompt: int = 1,
                 generate: int = 1, kv_cache: bool = True, router: Router | None = None) -> SimResult:
    """Simulate ``batch`` sequences, each a prompt of ``prompt`` tokens then ``generate``
    tokens (each step ends by sampling one token). With ``kv_cache`` a step computes only
    its new tokens (the prompt, then one) and attention reads the cache from DRAM; without,
    step ``i`` recomputes all ``prompt + i`` tokens (threedsim's default).

    Raises:
        ValueError: non-positive sizes, or an MoE model without a router.
    """
    for n, v in (("batch", batch), ("prompt", prompt), ("generate", generate)):
        if v < 1:
            raise ValueError(f"simulate_run: {n} must be >= 1, got {v}")
    if cfg.n_experts and router is None:
        router = Router(cfg.n_experts, cfg.top_k)
    g = OpGraph(costs.comm_ns, costs.comm_nJ)
    b = _Builder(g, cfg, place, costs, router, kv_cache)
    n_tiles = len(place.tiers_used)
    events: list[tuple[int, int, int, int]] = []  # (time, order, kind 0 finish / 1 arrival, op)
    tile_q: list[list[tuple[tuple[int, int], int, int]]] = [[] for _ in range(n_tiles)]
    unit_q: dict[int, list[tuple[tuple[int, int], int, int]]] = {DIGITAL: [], ATTENTION: []}
    free = {DIGITAL: costs.digital_units, ATTENTION: costs.attention_units}
    busy = [-1] * n_tiles
    last_tier = [-1] * n_tiles
    tile_busy = np.zeros(n_tiles, dtype=np.int64)
    dirty: set[int] = set()
    order = [0]
    conflicts = [0]
    maybe_waits: list[tuple[int, int]] = []  # (tile, running MVM) seen by an MVM that became ready on a busy tile
    switch_nJ = [0.0]

    def ready(o: int) -> None:
        order[0] += 1
        r = g.res[o]
        if r >= 0:
            heapq.heappush(tile_q[r], (g.prio[o], order[0], o))
            if busy[r] >= 0 and not g.embed[o]:
                maybe_waits.append((r, busy[r]))  # a wait only if that MVM does not also end now
        else:
            heapq.heappush(unit_q[r], (g.prio[o], order[0], o))
        dirty.add(r)

    def release(o: int, t: int) -> None:
        for dst, delay in g.succ[o]:
            if delay:
                order[0] += 1
                heapq.heappush(events, (t + delay, order[0], 1, dst))
            else:
                g.npred[dst] -= 1
                if g.npred[dst] == 0:
                    ready(dst)
        g.succ[o] = []

    def start_step(seq: int, step: int, after: int | None, t: int) -> None:
        if kv_cache:
            pos = list(range(prompt)) if step == 0 else [prompt + step - 1]
        else:
            pos = list(range(prompt + step))
        first = len(g.res)
        s = b.step(seq, pos, prompt + step, after)
        if step + 1 < generate:
            def nxt(t2: int, seq: int = seq, step: int = step, s: int = s) -> None:
                start_step(seq, step + 1, s, t2)
            g.on_done[s] = nxt
        for o in range(first, len(g.res)):
            if g.npred[o] == 0:
                ready(o)
        if after is not None:
            release(after, t)

    for seq in range(batch):
        start_step(seq, 0, None, 0)
    now = 0
    while True:
        conflicts[0] += sum(1 for r, running in maybe_waits if busy[r] == running)
        maybe_waits.clear()
        for r in sorted(dirty):
            if r >= 0:
                q = tile_q[r]
                if busy[r] < 0 and q:
                    _, _, o = heapq.heappop(q)
                    dur = g.dur[o]
                    if last_tier[r] >= 0 and last_tier[r] != g.tier[o]:
                        dur += costs.switch_ns
                        switch_nJ[0] += costs.switch_nJ
                    last_tier[r] = g.tier[o]
                    busy[r] = o
                    tile_busy[r] += dur
                    conflicts[0] += sum(1 for e in q if not g.embed[e[2]])
                    order[0] += 1
                    heapq.heappush(events, (now + dur, order[0], 0, o))
            else:
                q = unit_q[r]
                while free[r] > 0 and q:
                    _, _, o = heapq.heappop(q)
                    free[r] -= 1
                    order[0] += 1
                    heapq.heappush(events, (now + g.dur[o], order[0], 0, o))
        dirty.clear()
        if not events:
            break
        now = events[0][0]
        while events and events[0][0] == now:
            _, _, kind, o = heapq.heappop(events)
            if kind == 1:
                g.npred[o] -= 1
                if g.npred[o] == 0:
                    ready(o)
                continue
            r = g.res[o]
            if r >= 0:
                busy[r] = -1
            else:
                free[r] += 1
            dirty.add(r)
            cb = g.on_done.pop(o, None)
            if cb is not None:
                cb(now)  # builds the next step and releases o's edges into it
            else:
                release(o, now)
    pending = [o for o in range(len(g.npred)) if g.npred[o] > 0]
    if pending:
        raise RuntimeError(f"simulate_run: {len(pending)} ops never became ready (graph error)")
    static_W = costs.static_W + (costs.dram_static_W if kv_cache else 0.0)
    energy = {k: v for k, v in g.energy_nJ.items()}
    energy["tier_switch"] = switch_nJ[0]
    energy["static"] = static_W * now
    return SimResult(time_ns=now, energy_nJ=sum(energy.values()), energy_breakdown_nJ=energy, busy_ns=dict(g.busy_ns),
                     counts=dict(g.counts), tile_conflicts=conflicts[0], tile_busy_ns=tile_busy,
                     tokens=batch * generate, tiles_used=int((place.tiers_used > 0).sum()),
                     extra={"ops": len(g.res)})
