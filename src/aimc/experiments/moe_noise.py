"""Dense vs mixture-of-experts language models under analog noise, at growing size
(issue 14, item 6; the claim tested: Büchel et al., Nat. Comput. Sci. 5 (2025) report that
MoEs tolerate analog noise better than dense models as they scale).

For each width ``d`` a dense :class:`~aimc.workloads.moe_lm.TinyLM` (FFN width ``4 d``)
and an MoE of equal *active* parameters (``n_experts`` experts of width ``4 d / top_k``,
``top_k`` active; attention, embeddings and head identical) are trained digitally on the
character-level Rotten Tomatoes corpus (:func:`~aimc.workloads.llm.movie_review_snippets`)
with the same data, steps and seed; each is then fine-tuned with the project's
hardware-aware training (:func:`aimc.train.fit.hat_finetune`). Plain and HAT models are
programmed on ``chips`` seeds of ``chip``, drifted to ``t_s`` and read with global drift
compensation; the figure of merit is the test perplexity's relative degradation
``ppl_chip / ppl_fp - 1`` (each model against its own floating-point perplexity). The
MoE router stays digital (``convert``'s default) unless ``router="analog"``.

Example:
    >>> dense = TinyLM(vocab=50, d=16, n_layers=1, n_heads=2, hidden=64, context=8, seed=0)
    >>> moe = TinyLM(vocab=50, d=16, n_layers=1, n_heads=2, hidden=32, context=8, n_experts=4, top_k=2, seed=0)
    >>> active_params(moe) - active_params(dense)  # the router (16 x 4) and one more output bias (16)
    80
"""
from __future__ import annotations

import time
from typing import Any, Callable, Literal, Sequence

import torch

import aimc
from aimc.experiments.common import mean_std, num_threads, time_label
from aimc.train.digital import n_params, train_digital
from aimc.train.fit import hat_finetune
from aimc.train.hat import HATConfig
from aimc.workloads.llm import movie_review_snippets
from aimc.workloads.llm3d.moe import lm_density
from aimc.workloads.moe_lm import CharCorpus, MoEFeedForward, TinyLM, equal_active_width, perplexity

__all__ = ["moe_noise", "markdown", "active_params", "coactivation"]


def active_params(lm: TinyLM) -> int:
    """Parameters one token uses: all but the inactive experts (``n_experts - top_k`` of each
    MoE block) and the embedding rows it does not look up (embeddings counted as one row)."""
    total = n_params(lm)
    for emb in (lm.tok, lm.pos):
        total -= emb.weight.numel() - emb.weight.shape[1]
    for ffn in lm.modules():
        if isinstance(ffn, MoEFeedForward):
            total -= n_params(ffn.experts[0]) * (ffn.n_experts - ffn.top_k)
    return total


def _chip_ppl(model: torch.nn.Module, chip: str, seeds: Sequence[int], t_s: float, x: torch.Tensor,
              y: torch.Tensor, router: str) -> list[float]:
    analog = aimc.convert(model, chip, router=router).eval()  # type: ignore[call-overload]
    out = []
    for s in seeds:
        aimc.program(analog, seed=s)
        aimc.drift(analog, t_s)
        aimc.compensate(analog)
        out.append(perplexity(analog, x, y))
    return out


def moe_noise(widths: Sequence[int] = (32, 64, 128), n_layers: int = 2, n_heads: int = 4, context: int = 64,
              n_experts: int = 4, top_k: int = 2, steps: int = 600, hat_steps: int = 150, batch_size: int = 32,
              lr: float = 3e-3, hat_lr: float = 1e-3, chip: str = "pcm-hermes", t_s: float = 86400.0,
              chips: int = 3, n_train: int = 8192, n_test: int = 256, router: Literal["digital", "analog"] = "digital",
              hat: HATConfig | str = "default", seed: int = 0, corpus_path: str | None = None, threads: int | None = 1,
              progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Perplexity degradation on chips of dense vs MoE LMs of equal active parameters (module doc).

    Args:
        widths: model widths ``d`` (each a multiple of ``n_heads``; ``4 d`` of ``top_k``).
        steps: digital Adam steps of ``batch_size`` windows of ``context`` characters
            (passes over ``n_train`` windows, rounded up to whole passes); hat_steps: the
            same for hardware-aware fine-tuning.
        chip, t_s, chips: chip preset, time after programming (s) and number of chips
            (programming seeds ``1000 * seed + i``).
        n_test: test windows of ``context`` characters (held-out snippets).
        router: the MoE router on tiles (``analog``) or not (``digital``, the default).
        hat: HAT config or preset name (:data:`aimc.train.hat.HAT_PRESETS`).

    Returns:
        JSON-able dict: settings, ``elapsed_s`` and ``rows``, one per width and architecture
        (``dense``/``moe``): ``d``, ``arch``, ``params``, ``active_params``, ``fp_ppl``,
        ``hat_fp_ppl`` and per method (``plain``, ``hat``) chip perplexities and the
        relative degradation's mean and std over chips.
    """
    if chips < 1 or steps < 1 or hat_steps < 1:
        raise ValueError(f"chips, steps and hat_steps must be >= 1, got {chips}, {steps}, {hat_steps}")
    corpus = CharCorpus(movie_review_snippets(corpus_path))
    x_tr, y_tr = corpus.windows("train", n_train, context, seed)
    x_te, y_te = corpus.windows("test", n_test, context, seed + 1)
    epochs = max(1, -(-steps * batch_size // n_train))
    hat_epochs = max(1, -(-hat_steps * batch_size // n_train))
    n_tr = min(n_train, steps * batch_size)  # one pass of fewer windows when steps are few
    hat_n = min(n_train, hat_steps * batch_size)
    report = progress or (lambda a, t, d: None)
    total = len(widths) * 2 * (2 + 2 * chips)
    chip_seeds = [1000 * seed + i for i in range(chips)]
    rows = []
    start = time.perf_counter()
    with num_threads(threads):
        for d in widths:
            for arch in ("dense", "moe"):
                moe = arch == "moe"
                hidden = equal_active_width(4 * d, top_k) if moe else 4 * d
                lm = TinyLM(corpus.vocab, d, n_layers, n_heads, hidden, context, n_experts=n_experts if moe else 0,
                            top_k=top_k, seed=seed)
                t0 = time.perf_counter()
                train_digital(lm, x_tr[:n_tr], y_tr[:n_tr], epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
                train_s = time.perf_counter() - t0
                report(1, total, f"d={d} {arch}: digital")
                t0 = time.perf_counter()
                hat_lm = hat_finetune(lm, x_tr[:hat_n], y_tr[:hat_n], chip, hat, epochs=hat_epochs, lr=hat_lr,
                                      batch_size=batch_size, seed=seed + 1)
                hat_s = time.perf_counter() - t0
                report(1, total, f"d={d} {arch}: HAT")
                row: dict[str, Any] = {"d": d, "arch": arch, "hidden": hidden, "params": n_params(lm),
                                       "active_params": active_params(lm), "fp_ppl": perplexity(lm, x_te, y_te),
                                       "hat_fp_ppl": perplexity(hat_lm, x_te, y_te), "train_s": train_s,
                                       "hat_s": hat_s}
                for method, model, ref in (("plain", lm, row["fp_ppl"]), ("hat", hat_lm, row["hat_fp_ppl"])):
                    ppl = _chip_ppl(model, chip, chip_seeds, t_s, x_te, y_te, router)
                    report(chips, total, f"d={d} {arch}: {method} on chips")
                    m, s = mean_std([p / ref - 1.0 for p in ppl])
                    row[method] = {"chip_ppl": ppl, "degradation_mean": m, "degradation_std": s}
                rows.append(row)
    return {"chip": chip, "t_s": t_s, "time": time_label(t_s), "chips": chips, "router": router,
            "n_layers": n_layers, "n_heads": n_heads, "context": context, "n_experts": n_experts, "top_k": top_k,
            "steps": epochs * (n_tr // batch_size + (n_tr % batch_size > 0)),
            "hat_steps": hat_epochs * (hat_n // batch_size + (hat_n % batch_size > 0)), "batch_size": batch_size,
            "vocab": corpus.vocab, "n_test_chars": int(y_te.numel()),
            "hat": hat if isinstance(hat, str) else hat.model_dump(), "threads": threads,
            "elapsed_s": time.perf_counter() - start, "rows": rows}


def markdown(r: dict[str, Any]) -> str:
    """The result of :func:`moe_noise` as a markdown table."""
    lines = [f"Perplexity on {r['chip']} at {r['time']} (GDC), {r['chips']} chips, router {r['router']}; "
             f"{r['n_layers']} layers, context {r['context']}, MoE {r['n_experts']} experts top-{r['top_k']}; "
             f"{r['steps']} digital + {r['hat_steps']} HAT steps of {r['batch_size']} windows",
             "",
             "| d | model | params | active | FP ppl | chip ppl, plain | degradation, plain | HAT FP ppl "
             "| chip ppl, HAT | degradation, HAT |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        cells = [str(row["d"]), row["arch"], f"{row['params']:,}", f"{row['active_params']:,}", f"{row['fp_ppl']:.3f}"]
        for method in ("plain", "hat"):
            if method == "hat":
                cells.append(f"{row['hat_fp_ppl']:.3f}")
            v = row[method]
            cells += [f"{sum(v['chip_ppl']) / len(v['chip_ppl']):.3f}",
                      f"{100 * v['degradation_mean']:.1f} ± {100 * v['degradation_std']:.1f} %"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def coactivation(d: int = 64, n_layers: int = 2, n_heads: int = 4, context: int = 64, n_experts: int = 8,
                 top_k: int = 2, steps: int = 512, batch_size: int = 32, lr: float = 3e-3, n_train: int = 8192,
                 n_test: int = 256, seed: int = 0, corpus_path: str | None = None,
                 threads: int | None = 1) -> dict[str, Any]:
    """A real router's expert-choice statistics: trains an MoE :class:`~aimc.workloads.moe_lm.TinyLM`
    (``n_experts`` experts of width ``4 d / top_k``, as :func:`moe_noise`) on the Rotten
    Tomatoes characters and measures, per layer, which experts its gates choose on the
    held-out text (:func:`aimc.workloads.llm3d.moe.lm_density`): for top-2 the co-activation
    ``P[i, j]``, the ``density`` of the 3D simulator's routing and ``top2`` placement.

    Returns:
        JSON-able dict: ``density`` (``(n_layers, E, E)`` nested lists, or ``(n_layers, E)``
        for top-1), ``tokens`` measured, ``fp_ppl`` on them, and per layer ``max_over_uniform``
        (the most frequent pair's probability over the uniform ``1 / C(E, 2)``, or the most
        frequent expert's over ``1 / E``) and ``top_pairs`` (the 3 most frequent).
    """
    corpus = CharCorpus(movie_review_snippets(corpus_path))
    x_tr, y_tr = corpus.windows("train", n_train, context, seed)
    x_te, y_te = corpus.windows("test", n_test, context, seed + 1)
    n_tr = min(n_train, steps * batch_size)
    epochs = max(1, -(-steps * batch_size // n_train))
    start = time.perf_counter()
    with num_threads(threads):
        lm = TinyLM(corpus.vocab, d, n_layers, n_heads, equal_active_width(4 * d, top_k), context,
                    n_experts=n_experts, top_k=top_k, seed=seed)
        train_digital(lm, x_tr[:n_tr], y_tr[:n_tr], epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
        dens = lm_density(lm, x_te)
        ppl = perplexity(lm, x_te, y_te)
    uniform = 1.0 / (n_experts * (n_experts - 1) / 2) if top_k == 2 else 1.0 / n_experts
    layers = []
    for p in dens:
        if top_k == 2:
            iu = torch.triu_indices(n_experts, n_experts, 1)
            pairs = 2 * p[iu[0], iu[1]]  # P[i, j] + P[j, i]
            top = torch.argsort(pairs, descending=True)[:3]
            layers.append({"max_over_uniform": float(pairs.max()) / uniform,
                           "top_pairs": [[int(iu[0, t]), int(iu[1, t]), float(pairs[t])] for t in top]})
        else:
            layers.append({"max_over_uniform": float(p.max()) / uniform})
    return {"density": dens.tolist(), "n_experts": n_experts, "top_k": top_k, "d": d, "n_layers": n_layers,
            "steps": epochs * (n_tr // batch_size + (n_tr % batch_size > 0)), "seed": seed,
            "tokens": int(x_te.numel()), "fp_ppl": ppl, "layers": layers, "elapsed_s": time.perf_counter() - start}
