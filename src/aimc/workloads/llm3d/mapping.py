"""Placing an LLM's weight matrices on the tiers of a 3D chip: the five strategies of
Buchel et al. (Nat. Comput. Sci. 5, 2025), as IBM threedsim's ``mapping/mapper.py`` does.

A ``K x N`` matrix is cut into ``ceil(K/rows) x ceil(N/cols)`` blocks, one tier each. Each
block goes to a tile and takes that tile's next free tier. Tiles are chosen by:

* ``greedy_in_order``: the least-filled tile (lowest index on ties): consecutive blocks
  land on consecutive tiles, so a matrix's blocks run in parallel;
* ``greedy_random``: the matrices in a random order, a random least-filled tile;
* ``greedy_util``: the tile of least *expected use*: a block adds 1 to its tile's weight,
  an expert's block ``1/E`` (an expert runs for ``top_k/E`` of the tokens), preferring
  tiles the matrix does not use yet;
* ``top2``: greedy, but the experts are placed in an order that puts experts often chosen
  together (a co-activation density ``P[i, j]``) in the same sweep over the tiles, hence on
  different tiles;
* ``moe_separated``: the MoE layers first; all experts' FFN1 blocks stacked along the tiers
  of one set of tiles, all FFN2 blocks on another (``split_ffn``) or the same set.

``split_ffn`` (default): an expert's FFN2 is placed independently of its FFN1 (else on FFN1's
tiles); ``stack_embedding``: the embedding's row blocks stacked along the tiers of as few
tiles as its width needs (a lookup reads one row block). A model larger than the chip
raises :class:`MappingError` before anything is placed.

Example:
    >>> from aimc.chips import load
    >>> from aimc.workloads.llm3d.model import load_model
    >>> p = map_model(load_model("threedsim-readme"), load("3d-nvm"), "greedy_in_order")
    >>> p.blocks["l0.ffn1"][0].tolist(), p.blocks["l0.o"][0].tolist(), p.used_tiers
    ([[8, 9, 10, 11]], [[7]], 40)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from aimc.chips.spec import ChipSpec
from aimc.workloads.llm3d.model import LLMConfig, matrices

__all__ = ["Strategy", "STRATEGIES", "ROLES", "Placement", "MappingError", "map_model"]

Strategy = Literal["greedy_in_order", "greedy_random", "greedy_util", "top2", "moe_separated"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)


#: What a tier holds, by its code in :meth:`Placement.tier_roles` (0: nothing).
ROLES: tuple[str, ...] = ("empty", "embedding / LM head", "attention (q, k, v, o)", "dense FFN in", "dense FFN out",
                          "router", "expert FFN in", "expert FFN out")


def _role(name: str) -> int:
    """The :data:`ROLES` code of a matrix name (``embed``, ``l3.q``, ``l3.e5.ffn2``, ...)."""
    last = name.rsplit(".", 1)[-1]
    if "." not in name:
        return 1  # embed, pos_embed, lm_head
    if last in ("q", "k", "v", "o"):
        return 2
    if last == "router":
        return 5
    expert = name.count(".") == 2
    return (7 if expert else 4) if last == "ffn2" else (6 if expert else 3)


class MappingError(ValueError):
    """The model does not fit the chip, or a strategy cannot place it."""


@dataclass
class Placement:
    """Where every block of every matrix lives.

    Attributes:
        blocks: matrix name -> ``(tiles, tiers)``, two ``(n_vertical, n_horizontal)`` int arrays.
        tiers_used: tiers occupied per tile.
        n_tiers: tiers per tile of the chip.
    """

    blocks: dict[str, tuple[np.ndarray, np.ndarray]]
    tiers_used: np.ndarray
    n_tiers: int

    @property
    def used_tiers(self) -> int:
        return int(self.tiers_used.sum())

    @property
    def occupancy(self) -> float:
        """Fraction of all tiers holding weights."""
        return self.used_tiers / (len(self.tiers_used) * self.n_tiers)

    def tier_roles(self) -> np.ndarray:
        """What every tier holds: ``(n_tiers, n_tiles)`` codes of :data:`ROLES` (0 = empty);
        column ``t`` has exactly ``tiers_used[t]`` non-zero entries.

        Example:
            >>> from aimc.chips import load
            >>> from aimc.workloads.llm3d.model import load_model
            >>> p = map_model(load_model("threedsim-readme"), load("3d-nvm"))
            >>> g = p.tier_roles(); g.shape, bool(((g > 0).sum(axis=0) == p.tiers_used).all())
            ((1024, 100), True)
            >>> [ROLES[c] for c in g[:3, 0]], ROLES[g[0, 8]]  # the embedding stacked on tile 0
            (['embedding / LM head', 'embedding / LM head', 'empty'], 'dense FFN in')
        """
        grid = np.zeros((self.n_tiers, len(self.tiers_used)), dtype=np.uint8)
        for name, (tiles, tiers) in self.blocks.items():
            grid[tiers.ravel(), tiles.ravel()] = _role(name)
        return grid


class _Mapper:
    def __init__(self, chip: ChipSpec, strategy: str, seed: int):
        assert chip.tiers is not None
        self.rows, self.cols, self.n_tiles, self.n_tiers = chip.rows, chip.cols, chip.n_tiles, chip.tiers.n_tiers
        self.sum = np.zeros(self.n_tiles, dtype=np.int64)
        self.wsum = np.zeros(self.n_tiles)
        self.strategy, self.rng = strategy, np.random.default_rng(seed)
        self.blocks: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def place(self, name: str, k: int, n: int, util: float = 1.0, repeated: int = 0,
              tiles_in: list[int] | None = None, dry: bool = False) -> list[int]:
        nv, nh = math.ceil(k / self.rows), math.ceil(n / self.cols)
        saved = (self.sum.copy(), self.wsum.copy()) if dry else None
        tiles, tiers = np.zeros((nv, nh), np.int64), np.zeros((nv, nh), np.int64)
        used: list[int] = []
        for b in range(nv * nh):
            if tiles_in is not None:
                t = tiles_in[b % len(tiles_in)]
                if self.sum[t] >= self.n_tiers:
                    t = int(np.argmin(self.sum))
            elif self.strategy in ("greedy_util", "moe_separated"):
                t = self._least_used(used, nv * nh, repeated)
            else:
                free = np.flatnonzero(self.sum == self.sum.min())
                t = int(self.rng.choice(free)) if self.strategy == "greedy_random" else int(free[0])
            if self.sum[t] >= self.n_tiers:
                raise MappingError(f"{name}: no free tier left (all {self.n_tiles} tiles x {self.n_tiers} tiers used)")
            tiles[b // nh, b % nh], tiers[b // nh, b % nh] = t, self.sum[t]
            used.append(int(t))
            self.sum[t] += 1
            self.wsum[t] += util
        if saved is not None:
            self.sum, self.wsum = saved
        else:
            self.blocks[name] = (tiles, tiers)
        return used

    def _least_used(self, used: list[int], n_blocks: int, repeated: int) -> int:
        ok = self.sum + repeated < self.n_tiers
        if not ok.any():
            raise MappingError(f"strategy {self.strategy}: cannot stack {repeated} more tiers on any tile")
        fresh = ok.copy()
        if n_blocks <= self.n_tiles:
            fresh[used] = False
        cand = fresh if fresh.any() else ok
        w = np.where(cand, self.wsum, np.inf)
        return int(np.flatnonzero(w == w.min())[0])


def _top2_order(density: np.ndarray, per_sweep: int) -> list[int]:
    """Expert order for ``top2``: repeatedly the expert ``i`` maximising ``P(i) * sum_{j in S}
    P[i, j]`` over the experts ``S`` of the current sweep (threedsim ``get_next_k``); a sweep
    holds ``per_sweep`` experts, as many as fit side by side on the tiles (threedsim's
    ``ceil(tiles / planar)``; its special pick of a least-likely expert for a sweep's
    partial last slot and its tile offset are not reproduced)."""
    e = density.shape[0]
    p_i = density.sum(axis=1)
    order: list[int] = []
    sweep: list[int] = []
    while len(order) < e:
        left = [i for i in range(e) if i not in order]
        score = [p_i[i] * (density[i, sweep].sum() if sweep else 1.0) for i in left]
        nxt = left[int(np.argmax(score))]
        order.append(nxt)
        sweep = [] if len(sweep) + 1 >= per_sweep else sweep + [nxt]
    return order


def map_model(cfg: LLMConfig, chip: ChipSpec, strategy: str = "greedy_in_order", split_ffn: bool = True,
              stack_embedding: bool = True, density: np.ndarray | None = None, seed: int = 0,
              pos_embedding_rows: int = 0) -> Placement:
    """Place every matrix of ``cfg`` on ``chip`` (module doc).

    Args:
        cfg: the model. chip: a chip with a ``tiers:`` section.
        strategy: one of :data:`STRATEGIES`.
        split_ffn, stack_embedding: the options of the module doc.
        density: ``top2``: the experts' co-activation ``P[i, j]`` (``E x E``, or one per layer:
            ``n_layers x E x E``; from a real gate or assumed); ``None`` = uniform (then ``top2``
            is ``greedy_in_order``).
        seed: ``greedy_random``'s draws.
        pos_embedding_rows: rows of a learned positional-embedding table stored on the chip
            (threedsim stores ``max_seq_length x d``; it is added digitally, never read as an MVM).

    Raises:
        MappingError: unknown strategy, or the model needs more tiers than the chip has.
    """
    if strategy not in STRATEGIES:
        raise MappingError(f"unknown mapping strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    if chip.tiers is None:
        raise MappingError(f"chip {chip.name!r} has no tiers: section (not a 3D chip)")
    work = matrices(cfg)
    need = sum(math.ceil(w.in_features / chip.rows) * math.ceil(w.out_features / chip.cols) for w in work)
    need += math.ceil(pos_embedding_rows / chip.rows) * math.ceil(cfg.d_model / chip.cols) if pos_embedding_rows else 0
    have = chip.n_tiles * chip.tiers.n_tiers
    if need > have:
        raise MappingError(f"model {cfg.name!r} ({cfg.total_params / 1e9:.3g} B weights) needs {need} tiers of "
                           f"{chip.rows}x{chip.cols}, chip {chip.name!r} has {have} ({chip.n_tiles} tiles x "
                           f"{chip.tiers.n_tiers} tiers): it does not fit")
    m = _Mapper(chip, strategy, seed)
    shapes = {w.name: (w.in_features, w.out_features) for w in work}
    units: list[list[str]] = [["embed"]] + ([["pos_embed"]] if pos_embedding_rows else [])
    if pos_embedding_rows:
        shapes["pos_embed"] = (pos_embedding_rows, cfg.d_model)
    for layer in range(cfg.n_layers):  # threedsim's module order: layer l holds the next layer's q, k, v
        names = [f"l0.{p}" for p in "qkv"] if layer == 0 else []
        names += [f"l{layer + 1}.{p}" for p in "qkv"] if layer + 1 < cfg.n_layers else []
        names.append(f"l{layer}.o")
        if cfg.is_moe_layer(layer):
            units += [names, [f"l{layer}.moe"]]
        else:
            units += [names + [f"l{layer}.{m}" for m in cfg.ffn_in] + [f"l{layer}.ffn2"]]
    units.append(["lm_head"])
    order = [u for group in units for u in group]
    if strategy == "greedy_random":
        m.rng.shuffle(order)
    elif strategy == "moe_separated":
        order = [u for u in order if u.endswith(".moe")] + [u for u in order if not u.endswith(".moe")]
    for unit in order:
        if unit == "embed" and stack_embedding:
            tiles = m.place("embed", chip.rows, cfg.d_model, dry=True)
            m.place("embed", *shapes["embed"], util=min(1.0, chip.rows / cfg.vocab_size), tiles_in=tiles)
        elif unit.endswith(".moe"):
            _place_moe(m, cfg, int(unit[1:].split(".")[0]), strategy, split_ffn, density)
        else:
            m.place(unit, *shapes[unit])
    return Placement(m.blocks, m.sum, chip.tiers.n_tiers)


def _place_moe(m: _Mapper, cfg: LLMConfig, layer: int, strategy: str, split_ffn: bool,
               density: np.ndarray | None) -> None:
    d, f, e, u = cfg.d_model, cfg.d_ff, cfg.n_experts, 1.0 / cfg.n_experts
    m.place(f"l{layer}.router", d, e)
    name = lambda i, w: f"l{layer}.e{i}.{w}"  # noqa: E731
    if strategy == "moe_separated":
        n_mat = len(cfg.ffn_in) + 1
        tiles_in: list[int] = []
        for w in cfg.ffn_in:  # each input matrix of all experts stacked on one set of tiles
            stack = m.place(name(0, w), d, f, util=u, repeated=e if split_ffn else n_mat * e)
            tiles_in = tiles_in or stack
            for i in range(1, e):
                m.place(name(i, w), d, f, util=u, tiles_in=stack if split_ffn else tiles_in)
        tiles_out = m.place(name(0, "ffn2"), f, d, util=u, repeated=e) if split_ffn else None
        for i in range(1 if split_ffn else 0, e):
            m.place(name(i, "ffn2"), f, d, util=u, tiles_in=tiles_out if split_ffn else tiles_in)
        return
    order = list(range(e))
    if strategy == "top2" and density is not None:
        dens = np.asarray(density, dtype=float)
        if dens.ndim == 3 and dens.shape[0] == cfg.n_layers:
            dens = dens[layer]  # one co-activation per layer
        if dens.shape != (e, e):
            raise MappingError(f"top2: density must be {e}x{e} (experts' co-activation) or {cfg.n_layers}x{e}x{e} "
                               f"(one per layer), got {np.shape(density)}")
        planar = (len(cfg.ffn_in) + (1 if split_ffn else 0)) * math.ceil(d / m.rows) * math.ceil(f / m.cols)
        order = _top2_order(dens, max(1, math.ceil(m.n_tiles / planar)))
    for i in order:
        tiles_in = m.place(name(i, "ffn1"), d, f, util=u)
        for w in cfg.ffn_in[1:]:
            m.place(name(i, w), d, f, util=u, tiles_in=None if split_ffn else tiles_in)
        m.place(name(i, "ffn2"), f, d, util=u, tiles_in=None if split_ffn else tiles_in)
