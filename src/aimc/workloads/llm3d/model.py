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
        activation: ``relu`` or ``gelu`` (one digital op per FFN), or ``swiglu``
            (``W2 (silu(W1 x) * W3 x)``, Shazeer 2020, as Llama/Mixtral: a third matrix ``ffn3``
            and two digital ops, SiLU and a product).
        n_kv_heads: key/value heads (grouped-query attention, Ainslie et al. 2023); ``None``
            = ``n_heads``. ``k`` and ``v`` are ``d_model x d_kv`` with ``d_kv = d_model /
            n_heads * n_kv_heads``, and so is each layer's KV cache per token.
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
    activation: Literal["relu", "gelu", "swiglu"] = "relu"
    n_kv_heads: int | None = Field(None, ge=1, le=1 << 12)

    @model_validator(mode="after")
    def _check(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.n_kv_heads is not None and self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must be divisible by n_kv_heads ({self.n_kv_heads})")
        if self.n_experts and self.top_k > self.n_experts:
            raise ValueError(f"top_k ({self.top_k}) must be <= n_experts ({self.n_experts})")
        return self

    def is_moe_layer(self, layer: int) -> bool:
        """Whether ``layer`` holds experts."""
        return self.n_experts > 0 and layer % self.moe_every == 0

    @property
    def d_kv(self) -> int:
        """Width of the key and value projections (module doc of ``n_kv_heads``)."""
        return self.d_model // self.n_heads * (self.n_kv_heads or self.n_heads)

    @property
    def ffn_in(self) -> tuple[str, ...]:
        """The FFN's input matrices: ``("ffn1",)`` or, for SwiGLU, ``("ffn1", "ffn3")``."""
        return ("ffn1", "ffn3") if self.activation == "swiglu" else ("ffn1",)

    @property
    def total_params(self) -> int:
        """Weights stored (all experts)."""
        return sum(w.in_features * w.out_features for w in matrices(self))

    @property
    def active_params(self) -> int:
        """Weights read per generated token: embedding row, attention, router, ``top_k``
        experts (or the dense FFN) and the LM head."""
        total = 0
        for w in matrices(self):
            n = w.in_features * w.out_features
            if w.name == "embed":
                n = self.d_model  # a lookup reads one row
            elif ".e" in w.name:  # an expert: top_k of n_experts are read
                n = n * self.top_k // self.n_experts
            total += n
        return total


#: Built-in models. ``moe-small``/``dense-small``: an MoE and a dense model of equal active
#: parameters (top-1 of 8 experts of width 2,048 vs one FFN of width 2,048; the router
#: aside) that fit the ``3d-nvm`` preset; ``threedsim-readme``: threedsim's README example;
#: ``threedsim-moe``: its test configuration (tests/mapping_tests/test_mapping_decoder_only.py);
#: ``moe-25b``: an MoE that fills the 100 x 1,024-tier ``3d-nvm`` chip (~26 B weights);
#: ``mixtral-8x7b``: Mixtral 8x7B's configuration (Jiang et al., arXiv:2401.04088, Table 1:
#: dim 4096, 32 layers, head dim 128, 32 heads, 8 kv heads, hidden 14336, vocab 32000, 8
#: experts, top 2; 46.7 B weights), needing a 175-tile chip of 1,024 tiers.
MODELS: dict[str, LLMConfig] = {m.name: m for m in [
    LLMConfig(name="dense-small", d_model=512, n_heads=8, d_ff=2048, n_layers=8, vocab_size=8192),
    LLMConfig(name="moe-small", d_model=512, n_heads=8, d_ff=2048, n_layers=8, vocab_size=8192, n_experts=8, top_k=1),
    LLMConfig(name="threedsim-readme", d_model=512, n_heads=8, d_ff=2048, n_layers=3, vocab_size=1024),
    LLMConfig(name="threedsim-moe", d_model=1024, n_heads=8, d_ff=4096, n_layers=10, vocab_size=50000,
              n_experts=64, top_k=1),
    LLMConfig(name="moe-25b", d_model=2048, n_heads=16, d_ff=8192, n_layers=24, vocab_size=32768,
              n_experts=31, top_k=1),
    LLMConfig(name="dense-25b-active", d_model=2048, n_heads=16, d_ff=8192, n_layers=24, vocab_size=32768),
    LLMConfig(name="mixtral-8x7b", d_model=4096, n_heads=32, n_kv_heads=8, d_ff=14336, n_layers=32, vocab_size=32000,
              n_experts=8, top_k=2, activation="swiglu"),
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
    ``l{i}.ffn1|ffn2`` (SwiGLU: and ``ffn3``) or ``l{i}.router`` and ``l{i}.e{j}.ffn1|ffn2``,
    ``lm_head``."""
    d, out = cfg.d_model, []
    lin = lambda name, k, n: LayerWorkIO(name, "linear", k, n, 1, x_elements=k)  # noqa: E731
    out.append(LayerWorkIO("embed", "linear", cfg.vocab_size, d, 1, x_elements=1))
    for layer in range(cfg.n_layers):
        out += [lin(f"l{layer}.q", d, d), lin(f"l{layer}.k", d, cfg.d_kv), lin(f"l{layer}.v", d, cfg.d_kv),
                lin(f"l{layer}.o", d, d)]
        experts = [f"l{layer}.e{e}." for e in range(cfg.n_experts)] if cfg.is_moe_layer(layer) else [f"l{layer}."]
        if cfg.is_moe_layer(layer):
            out.append(lin(f"l{layer}.router", d, cfg.n_experts))
        for pre in experts:
            out += [lin(pre + m, d, cfg.d_ff) for m in cfg.ffn_in] + [lin(pre + "ffn2", cfg.d_ff, d)]
    out.append(lin("lm_head", d, cfg.vocab_size))
    return out
