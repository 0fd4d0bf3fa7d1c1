"""Language models on analog tiles: the SmolLM2-135M table, the ablation that explains
its analog perplexity, all-MiniLM-L6-v2 embeddings over time and ``aimc bench llm``.

* :func:`llm_table`: perplexity on held-out movie-review text in floating point, on a
  chip without HAT, after a short HAT fine-tune by self-distillation, and with 4-bit
  round-to-nearest weights (per group).
* :func:`llm_ablation`: the same analog deployment with each non-ideality switched off in
  turn (and each alone on an otherwise ideal chip), plus per-layer activation statistics
  (:func:`activation_stats`) that say why.
* :func:`minilm_drift`: cosine similarity of analog sentence embeddings to FP from 1 s to
  1 year after programming.
* :func:`bench_llm`: decoding speed with the KV cache (analog vs FP), programming and
  drift time, and memory of the programmed model.

Every function takes the model and text (defaults: the offline packages of
:mod:`aimc.workloads.llm`) and bounds the tokens it evaluates.
"""
from __future__ import annotations

import time
import warnings
from typing import Any, Callable

import torch
from torch import nn

import aimc
from aimc.chips import ChipSpec, load
from aimc.experiments.common import mean_std, num_threads, time_label
from aimc.nn.convert import analog_layers
from aimc.tiles.layout import TileLayout
from aimc.workloads import llm
from aimc.workloads.llm_distill import DISTILL_HAT, distill, self_generated_text

__all__ = ["ABLATIONS", "ablated_chip", "deploy", "model_bytes", "activation_stats", "rtn_rows", "llm_table",
           "llm_ablation", "minilm_drift", "bench_llm"]

#: Non-idealities the ablation switches, and what switching one off means.
ABLATIONS: dict[str, str] = {
    "out_noise": "no additive output noise (noise.out_noise = 0)",
    "dac": "exact DAC (dac.bits = None; per-vector abs-max scaling kept)",
    "adc": "exact ADC (adc.bits = None: no quantisation, no clipping at the bound)",
    "read_noise": "no 1/f read noise",
    "prog_noise": "no programming noise",
    "drift": "no drift (drift exponents 0)",
    "ir_drop": "no IR drop",
}


def ablated_chip(chip: ChipSpec | str, off: tuple[str, ...] = (), only: tuple[str, ...] | None = None) -> ChipSpec:
    """``chip`` with the non-idealities ``off`` switched off, or with all but ``only``
    switched off (keys of :data:`ABLATIONS`).

    Example:
        >>> ablated_chip("pcm-hermes", off=("out_noise",)).noise.out_noise
        0.0
        >>> ablated_chip("pcm-hermes", only=("dac",)).adc.bits is None
        True
    """
    chip = load(chip)
    unknown = (set(off) | set(only or ())) - set(ABLATIONS)
    if unknown:
        raise ValueError(f"unknown non-ideality {sorted(unknown)}; allowed: {', '.join(ABLATIONS)}")
    drop = set(ABLATIONS) - set(only) if only is not None else set(off)
    upd: dict[str, Any] = {}
    noise: dict[str, Any] = {}
    dev: dict[str, Any] = {}
    if "out_noise" in drop:
        noise["out_noise"] = 0.0
    if "read_noise" in drop:
        noise["read_noise"] = False
    if "dac" in drop:
        upd["dac"] = chip.dac.model_copy(update={"bits": None})
    if "adc" in drop:
        upd["adc"] = chip.adc.model_copy(update={"bits": None})
    if "ir_drop" in drop:
        upd["ir_drop"] = chip.ir_drop.model_copy(update={"mode": "none", "r_wire_ohm": 0.0})
    for key, field in (("prog_noise", "prog_noise_scale"), ("drift", "drift_scale")):
        if key in drop:
            if field not in type(chip.device).model_fields:
                raise ValueError(f"{chip.name}'s device ({chip.device.kind}) has no {field}")
            dev[field] = 0.0
    if noise:
        upd["noise"] = chip.noise.model_copy(update=noise)
    if dev:
        upd["device"] = chip.device.model_copy(update=dev)
    label = ",".join(sorted(drop)) if only is None else "only " + ",".join(only)
    upd["name"] = f"{chip.name} ({'ideal except ' + ','.join(only) if only is not None else 'no ' + label})"
    return chip.model_copy(update=upd)


def _convert(model: nn.Module, chip: ChipSpec | str) -> nn.Module:
    """``aimc.convert`` without its warnings (the tile capacity is reported by
    :func:`bench_llm`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return aimc.convert(model, chip)


def deploy(model: nn.Module, chip: ChipSpec | str, seed: int = 0, t_s: float = 86_400.0,
           gdc: bool = True, store: str = "lean") -> tuple[nn.Module, dict[str, float]]:
    """Convert, program (seed; ``store``, :func:`aimc.program`: lean by default, the
    state redrawn from a seed per layer), drift to ``t_s`` and compensate; returns the
    analog model and the seconds each step took (wall clock, and CPU time of this
    process: on a shared machine the CPU time is what the step costs)."""
    t0 = time.perf_counter()
    analog = _convert(model, chip)
    return analog, {"convert_s": time.perf_counter() - t0, **_program_drift(analog, seed, t_s, gdc, store)}


def _program_drift(analog: nn.Module, seed: int, t_s: float, gdc: bool = True, store: str = "lean") -> dict[str, float]:
    """Program the converted ``analog`` model (``seed``, ``store``), drift it to ``t_s`` and
    compensate (``gdc``); the seconds each step took (wall clock and CPU time)."""
    t1, c1 = time.perf_counter(), time.process_time()
    aimc.program(analog, seed=seed, store=store)
    t2, c2 = time.perf_counter(), time.process_time()
    aimc.drift(analog, t_s)
    if gdc:
        aimc.compensate(analog)
    t3, c3 = time.perf_counter(), time.process_time()
    return {"program_s": t2 - t1, "drift_s": t3 - t2, "program_cpu_s": c2 - c1, "drift_cpu_s": c3 - c2}


def model_bytes(model: nn.Module) -> int:
    """Bytes of ``model``'s parameters and buffers (each storage once) and of its analog
    layers' cached read matrices."""
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        key = t.untyped_storage().data_ptr()
        if key not in seen and t.numel():
            seen.add(key)
            total += t.untyped_storage().nbytes()
    return total + sum(m.read_cache_bytes() for _, m in analog_layers(model))


@torch.no_grad()
def activation_stats(model: nn.Module, ids: torch.Tensor, chip: ChipSpec | str = "pcm-hermes") -> list[dict[str, Any]]:
    """Per ``nn.Linear`` of the (digital) ``model`` on ``ids``: the inputs' crest factor
    (median over tokens of ``max|x| / rms(x)``: how far an outlier pushes the typical input
    below the DAC full scale under per-vector abs-max scaling), and the median |column
    output| of one tile in device units, ``|sum_i (x_i / max|x|) (w_ij / max_i|w_ij|)|``,
    next to the chip's output noise and ADC step: the signal the periphery sees."""
    chip = load(chip)
    per_unit = chip.adc.bound / (2 ** (chip.adc.bits - 1) - 1) if chip.adc.bits else None
    rows: list[dict[str, Any]] = []

    def hook(name):
        def f(mod, args):
            x = args[0].reshape(-1, args[0].shape[-1]).float()
            amax = x.abs().amax(1, keepdim=True).clamp(min=1e-12)
            crest = (amax[:, 0] / x.pow(2).mean(1).sqrt().clamp(min=1e-12)).median()
            r = TileLayout.of(tuple(mod.weight.shape), chip).rows_used  # the first input tile's rows
            w = mod.weight.float()[:, :r]
            wn = w / w.abs().amax(1, keepdim=True).clamp(min=1e-12)
            y = (x[:, :r] / amax) @ wn.t()
            rows.append({"layer": name, "crest_factor": float(crest), "tile_output_median": float(y.abs().median()),
                         "out_noise": chip.noise.out_noise, "adc_lsb": per_unit})
        return f

    hooks = [m.register_forward_pre_hook(hook(n)) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    try:
        model(input_ids=ids)
    finally:
        for h in hooks:
            h.remove()
    return rows


def _ppl_row(name: str, model: nn.Module, ids: torch.Tensor, window: int, ref: torch.Tensor | None,
             **extra: Any) -> dict[str, Any]:
    r = llm.perplexity(model, ids, window=window, reference=ref)
    return {"model": name, "perplexity": r["perplexity"], "tokens": r["tokens"],
            "top1_agreement": r.get("top1_agreement"), **extra, "_argmax": r["argmax"]}


def _fp_rows(model: nn.Module | None, tokenizer: Any, tokens: int,
             window: int) -> tuple[nn.Module, torch.Tensor, list[dict[str, Any]]]:
    """The model (SmolLM2 when None), the first ``tokens`` tokens of the movie-review text
    and the FP row."""
    if model is None:
        model, tokenizer = llm.load_smollm2()
    ids = llm.token_ids(tokenizer, llm.movie_review_snippets(), tokens)
    return model, ids, [_ppl_row("FP", model, ids, window, None)]


def rtn_rows(model: nn.Module | None = None, tokenizer: Any = None, tokens: int = 512, window: int = 256,
             groups: tuple[int, ...] = (64, 32), bits: int = 4, threads: int | None = 1) -> list[dict[str, Any]]:
    """FP and ``bits``-bit round-to-nearest rows (one per group size) of the table alone
    (no chip, minutes instead of hours)."""
    with num_threads(threads):
        model, ids, rows = _fp_rows(model, tokenizer, tokens, window)
        ref = rows[0]["_argmax"]
        rows += [_ppl_row(f"{bits}-bit RTN (group {g})", llm.rtn_quantize(model, bits, g), ids, window, ref)
                 for g in groups]
    for r in rows:
        r.pop("_argmax")
    return rows


def llm_table(model: nn.Module | None = None, tokenizer: Any = None, chip: str = "pcm-hermes", tokens: int = 2048,
              window: int = 256, t_s: float = 86_400.0, seed: int = 0, hat_steps: int = 40, hat_batch: int = 2,
              hat_seq: int = 64, hat_lr: float = 5e-5, rtn_group: int = 64, threads: int | None = 1) -> list[dict[str, Any]]:
    """Rows FP / analog (no HAT) / analog after HAT distillation / 4-bit RTN: perplexity on
    the first ``tokens`` tokens of the movie-review snippets and top-1 agreement with FP.
    The analog rows are programmed with ``seed`` and read ``t_s`` after programming with
    global drift compensation; HAT fine-tunes on ``hat_steps * hat_batch`` sequences of
    ``hat_seq`` tokens that the FP model generated itself."""
    with num_threads(threads):
        model, ids, rows = _fp_rows(model, tokenizer, tokens, window)
        ref = rows[0]["_argmax"]
        analog, times = deploy(model, chip, seed, t_s)
        rows.append(_ppl_row(f"{chip}, no HAT", analog, ids, window, ref, **times))
        del analog
        t0 = time.perf_counter()
        data = self_generated_text(model, hat_steps * hat_batch, hat_seq, seed=seed)
        t1 = time.perf_counter()
        student = _convert(model, chip)
        losses = distill(student, model, data, steps=hat_steps, batch=hat_batch, lr=hat_lr, seed=seed)
        t2 = time.perf_counter()
        _program_drift(student, seed, t_s)  # as the no-HAT row (deploy)
        rows.append(_ppl_row(f"{chip}, HAT ({hat_steps} steps)", student, ids, window, ref,
                             generate_s=t1 - t0, hat_s=t2 - t1, loss_first=losses[0], loss_last=losses[-1]))
        del student
        rows.append(_ppl_row(f"4-bit RTN (group {rtn_group})", llm.rtn_quantize(model, 4, rtn_group), ids, window, ref))
    for r in rows:
        r.pop("_argmax")
    return rows


def _set_chip(analog: nn.Module, spec: ChipSpec, exact_weights: bool, no_drift: bool,
              saved: dict[str, tuple[torch.Tensor, torch.Tensor]], t_s: float) -> None:
    """Put the programmed ``analog`` model into one ablation configuration, in place: the
    same programmed devices read through the periphery of ``spec``; with
    ``exact_weights`` each device at its target (no programming noise), with
    ``no_drift`` drift exponents 0; then the GDC reference at t = 0, the time ``t_s`` and
    compensation, as after programming."""
    from aimc.tiles import encode

    for name, layer in analog_layers(analog):
        g, nu = saved[name]
        if exact_weights:
            g = encode(layer.analog_weight(), layer.chip).g_target_uS
        layer.g_uS, layer.drift_state = g, torch.zeros_like(nu) if no_drift else nu
        layer.chip = spec.model_copy(update={"device": layer.chip.device})  # the programmed device model
        layer.set_time(0.0)
        layer.compensate_drift(False)
        with torch.no_grad():
            layer.gdc_ref.copy_(layer._calibration_read())
    aimc.drift(analog, t_s)
    aimc.compensate(analog)


def llm_ablation(model: nn.Module | None = None, tokenizer: Any = None, chip: str = "pcm-hermes", tokens: int = 512,
                 window: int = 256, t_s: float = 86_400.0, seed: int = 0, alone: bool = True,
                 threads: int | None = 1, progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Perplexity of the analog model with each non-ideality of :data:`ABLATIONS` off in
    turn (``"off"``), and, with ``alone``, with each one alone on an otherwise ideal chip
    (``"alone"``), plus the FP and full-chip rows and :func:`activation_stats`.

    One chip is programmed (``seed``) and every configuration reads the same devices:
    periphery, read noise and IR drop switch with the chip spec the layers read through;
    programming noise off puts each device at its target; drift off sets the devices'
    drift exponents to 0. ``progress(row)`` is called with each row as it is measured.
    The configurations run in order of what they explain: the full chip, the output noise
    off and alone, then the rest off in turn, everything off, the rest alone."""
    with num_threads(threads):
        if model is None:
            model, tokenizer = llm.load_smollm2()
        ids = llm.token_ids(tokenizer, llm.movie_review_snippets(), tokens)
        fp = llm.perplexity(model, ids, window=window)
        out: dict[str, Any] = {"fp": fp["perplexity"], "tokens": fp["tokens"], "chip": chip, "t_s": t_s}
        full = load(chip)
        analog, times = deploy(model, full, seed, t_s, store="full")  # the ablation swaps the stored devices
        out.update(times)
        saved = {n: (m.g_uS, m.drift_state) for n, m in analog_layers(analog)}
        configs: list[tuple[str, str, set[str]]] = [("full", "all on", set()), ("off", "out_noise", {"out_noise"})]
        if alone:
            configs += [("alone", "out_noise", set(ABLATIONS) - {"out_noise"})]
        configs += [("off", k, {k}) for k in ABLATIONS if k != "out_noise"]
        if alone:
            configs += [("none", "all off", set(ABLATIONS))]
            configs += [("alone", k, set(ABLATIONS) - {k}) for k in ABLATIONS if k != "out_noise"]
        rows = []
        for group, key, off in configs:
            periphery = tuple(sorted(off - {"prog_noise", "drift"}))
            t0 = time.perf_counter()
            _set_chip(analog, ablated_chip(full, off=periphery), "prog_noise" in off, "drift" in off, saved, t_s)
            r = llm.perplexity(analog, ids, window=window, reference=fp["argmax"])
            rows.append({"group": group, "non_ideality": key, "perplexity": r["perplexity"],
                         "top1_agreement": r["top1_agreement"], "seconds": time.perf_counter() - t0})
            if progress is not None:
                progress(rows[-1])
        del analog
        out["rows"] = rows
        out["activations"] = activation_stats(model, ids[:, :window], chip)
    return out


def minilm_drift(model: nn.Module | None = None, tokenizer: Any = None, chip: str = "pcm-hermes",
                 sentences: int = 64, chips: int = 3, times_s: tuple[float, ...] = (1.0, 3600.0, 86_400.0, 2_592_000.0,
                                                                                    31_536_000.0),
                 gdc: bool = True, threads: int | None = 1) -> list[dict[str, Any]]:
    """Cosine similarity of analog all-MiniLM-L6-v2 embeddings of ``sentences`` movie-review
    snippets (every 100th) to the FP embeddings, at each time after programming: mean ± std
    over ``chips`` chips of the per-chip mean over sentences, and the worst sentence."""
    with num_threads(threads):
        if model is None:
            model, tokenizer = llm.load_minilm()
        texts = llm.movie_review_snippets()[::100][:sentences]
        ref = llm.sentence_embeddings(model, tokenizer, texts)
        analog = _convert(model, chip)
        sims: dict[float, list[torch.Tensor]] = {t: [] for t in times_s}
        for seed in range(chips):
            aimc.program(analog, seed=seed, store="lean")
            for t in times_s:
                aimc.drift(analog, t)
                if gdc:
                    aimc.compensate(analog)
                sims[t].append((llm.sentence_embeddings(analog, tokenizer, texts) * ref).sum(-1))
    rows = []
    for t in times_s:
        m, s = mean_std([float(c.mean()) for c in sims[t]])
        rows.append({"time": time_label(t), "t_s": t, "cosine_mean": m, "cosine_std": s,
                     "cosine_min": float(torch.stack(sims[t]).min()), "sentences": len(texts), "chips": chips})
    return rows


def bench_llm(model: nn.Module | str | None = None, chip: str = "pcm-hermes", new_tokens: int = 32, prompt_tokens: int = 16,
              t_s: float = 86_400.0, seed: int = 0, repeats: int = 3, threads: int | None = 1,
              store: str = "lean") -> dict[str, Any]:
    """Greedy decoding with the KV cache, analog (programmed, drifted, compensated) vs FP
    (``model``: a causal LM, a path for :func:`~aimc.workloads.llm.load_smollm2`, or None
    for SmolLM2-135M):
    ``tokens_per_s``, ``fp_tokens_per_s`` and ``ratio`` (best of ``repeats``, runs
    interleaved), with the programming and drift times, the memory of both models and the
    tiles the model needs against the chip's; ``store``: how the chip is held
    (:func:`aimc.program`)."""
    with num_threads(threads):
        n_threads = torch.get_num_threads()
        if model is None or isinstance(model, str):
            model, _ = llm.load_smollm2(model, tokenizer=False)
        analog, times = deploy(model, chip, seed, t_s, store=store)
        vocab = int(getattr(model, "config").vocab_size)
        ids = ((torch.arange(prompt_tokens) * 7 + 100) % vocab).view(1, -1)  # a fixed prompt
        llm.generate(analog, ids, 2)
        llm.generate(model, ids, 2)
        a_rates: list[float] = []
        d_rates: list[float] = []
        for i in range(repeats):
            for which in ((analog, a_rates), (model, d_rates))[:: 1 if i % 2 == 0 else -1]:
                which[1].append(llm.generate(which[0], ids, new_tokens)[1])
        fp_bytes, a_bytes = model_bytes(model), model_bytes(analog)
        spec = load(chip)
        tiles = sum(m.layout.n_tiles for _, m in analog_layers(analog))
    return {"chip": chip, "store": store, "tokens_per_s": max(a_rates), "fp_tokens_per_s": max(d_rates),
            "ratio": max(a_rates) / max(d_rates), "new_tokens": new_tokens, "prompt_tokens": prompt_tokens,
            **times, "program_drift_s": times["program_s"] + times["drift_s"],
            "program_drift_cpu_s": times["program_cpu_s"] + times["drift_cpu_s"], "fp_MB": fp_bytes / 1e6,
            "analog_MB": a_bytes / 1e6, "memory_ratio": a_bytes / fp_bytes, "tiles_needed": tiles,
            "chip_tiles": spec.n_tiles, "threads": n_threads}
