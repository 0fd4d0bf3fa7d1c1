"""Decoder LLM configurations for the 3D AIMC simulator, and their weight matrices as the
compiler's workload representation (:class:`~aimc.graph.builders.LayerWorkIO`).

The decoder follows IBM threedsim's ``TransformerDecoderLayer`` (post-norm, as
``torch.nn.TransformerDecoderLayer`` with ``norm_first=False``): per layer ``q, k, v``
projections, attention, the output projection, a residual add, a layer norm, the
feed-forward block (dense, or a mixture of experts: a router ``d x E`` and ``E`` expert
FFNs ``d x d_ff``, ``d_ff x d``, top-``k`` of them per token), a residual add and a layer
norm; token embeddings stored in the tiers (a lookup is one tier read per column block);
a final layer norm and an LM head ``d x vocab`` applied to the last token of a step; the
next token is sampled. Positional embeddings are added digitally (no weights on the chip).

Example:
    >>> cfg = load_model("moe-small")
    >>> cfg.n_experts, cfg.top_k, cfg.active_params - load_model("dense-small").active_params  # the routers
    (8, 1, 32768)
    >>> [w.name for w in matrices(load_model("dense-small"))][:5]
    ['embed', 'l0.q', 'l0.k', 'l0.v', 'l0.o']
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from aimc.config import BaseConfig, ConfigError
from aimc.graph.builders import LayerWorkIO

__all__ = ["LLMConfig", "MODELS", "load_model", "matrices"]


class LLMConfig(BaseConfig):
    """A decoder-only transformer (module doc).

    Attributes:
        name: label.
        d_model, n_heads, d_ff, n_layers, vocab_size: the usual sizes.
        n_experts: experts per MoE layer (0: dense); ``top_k`` experts chosen per token.
        moe_every: a layer ``l`` is an MoE layer if ``l % moe_every == 0`` (threedsim's
            ``frequency``).
        activation: ``relu`` or ``gelu`` (one digital op per FFN).
    """

    name: str = "custom"
    d_model: int = Field(ge=1, le=1 << 20)
    n_heads: int = Field(ge=1, le=1 << 12)
    d_ff: int = Field(ge=1, le=1 << 22)
    n_layers: int = Field(ge=1, le=1 << 12)
    vocab_size: int = Field(ge=1, le=1 << 24)
    n_experts: int = Field(0, ge=0, le=1 << 16)
    top_k: int = Field(1, ge=1, le=64)
    moe_every: int = Field(1, ge=1, le=1 << 12)
    activation: Literal["relu", "gelu"] = "relu"

    @model_validator(mode="after")
    def _check(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.n_experts and self.top_k > self.n_experts:
            raise ValueError(f"top_k ({self.top_k}) must be <= n_experts ({self.n_experts})")
        return self

    def is_moe_layer(self, layer: int) -> bool:
        """Whether ``layer`` holds experts."""
        return self.n_experts > 0 and layer % self.moe_every == 0

    @property
    def total_params(self) -> int:
        """Weights stored (all experts)."""
        return sum(w.in_features * w.out_features for w in matrices(self))

    @property
    def active_params(self) -> int:
        """Weights read per generated token: embedding row, attention, router, ``top_k``
        experts (or the dense FFN) and the LM head."""
        d, total = self.d_model, self.d_model * self.vocab_size + self.d_model
        for layer in range(self.n_layers):
            total += 4 * d * d
            if self.is_moe_layer(layer):
                total += d * self.n_experts + self.top_k * 2 * d * self.d_ff
            else:
                total += 2 * d * self.d_ff
        return total - self.d_model  # the embedding lookup reads one row


#: Built-in models. ``moe-small``/``dense-small``: an MoE and a dense model of equal active
#: parameters (top-1 of 8 experts of width 2,048 vs one FFN of width 2,048; the router
#: aside) that fit the ``3d-nvm`` preset; ``threedsim-readme``: threedsim's README example;
#: ``threedsim-moe``: its test configuration (tests/mapping_tests/test_mapping_decoder_only.py);
#: ``moe-25b``: an MoE that fills the 100 x 1,024-tier ``3d-nvm`` chip (~26 B weights).
MODELS: dict[str, LLMConfig] = {m.name: m for m in [
    LLMConfig(name="dense-small", d_model=512, n_heads=8, d_ff=2048, n_layers=8, vocab_size=8192),
    LLMConfig(name="moe-small", d_model=512, n_heads=8, d_ff=2048, n_layers=8, vocab_size=8192, n_experts=8, top_k=1),
    LLMConfig(name="threedsim-readme", d_model=512, n_heads=8, d_ff=2048, n_layers=3, vocab_size=1024),
    LLMConfig(name="threedsim-moe", d_model=1024, n_heads=8, d_ff=4096, n_layers=10, vocab_size=50000,
              n_experts=64, top_k=1),
    LLMConfig(name="moe-25b", d_model=2048, n_heads=16, d_ff=8192, n_layers=24, vocab_size=32768,
              n_experts=31, top_k=1),
    LLMConfig(name="dense-25b-active", d_model=2048, n_heads=16, d_ff=8192, n_layers=24, vocab_size=32768),
]}


def load_model(name_or_path: str | Path | LLMConfig) -> LLMConfig:
    """A built-in model by name, or a JSON file of :class:`LLMConfig` fields.

    Raises:
        ConfigError: unknown name, unreadable file or an invalid field (named).
    """
    if isinstance(name_or_path, LLMConfig):
        return name_or_path
    s = str(name_or_path)
    if s in MODELS:
        return MODELS[s]
    p = Path(s)
    if p.suffix.lower() != ".json" or not p.exists():
        raise ConfigError(f"unknown model {s!r}: not a built-in ({', '.join(MODELS)}) and not an existing .json file")
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"cannot read model file {p}: {err}") from None
    return LLMConfig.from_dict(data, source=str(p))


def matrices(cfg: LLMConfig) -> list[LayerWorkIO]:
    """Every weight matrix of ``cfg`` (``in_features x out_features``), once, in model
    order; ``n_mvm`` is the reads per generated token (1 for active matrices, ``top_k /
    n_experts`` rounded up to 1 for an expert). Names: ``embed``, ``l{i}.q|k|v|o``,
    ``l{i}.ffn1|ffn2`` or ``l{i}.router`` and ``l{i}.e{j}.ffn1|ffn2``, ``lm_head``."""
    d, out = cfg.d_model, []
    lin = lambda name, k, n: LayerWorkIO(name, "linear", k, n, 1, x_elements=k)  # noqa: E731
    out.append(LayerWorkIO("embed", "linear", cfg.vocab_size, d, 1, x_elements=1))
    for layer in range(cfg.n_layers):
        out += [lin(f"l{layer}.{p}", d, d) for p in "qkvo"]
        if cfg.is_moe_layer(layer):
            out.append(lin(f"l{layer}.router", d, cfg.n_experts))
            for e in range(cfg.n_experts):
                out += [lin(f"l{layer}.e{e}.ffn1", d, cfg.d_ff), lin(f"l{layer}.e{e}.ffn2", cfg.d_ff, d)]
        else:
            out += [lin(f"l{layer}.ffn1", d, cfg.d_ff), lin(f"l{layer}.ffn2", cfg.d_ff, d)]
    out.append(lin("lm_head", d, cfg.vocab_size))
    return out
