"""``aimc bench train --name llm-hat``: one hardware-aware fine-tuning step of a language
model against the same step in floating point.

The step is the distillation step of :func:`aimc.workloads.llm_distill.distill`
(:func:`~aimc.workloads.llm_distill.distill_step`): the FP teacher's forward pass without
gradients, the student's forward and backward pass of the per-token KL divergence, and one
Adam step on the trainable parameters. The HAT student is the model converted to the chip,
reading through :data:`~aimc.workloads.llm_distill.DISTILL_HAT`; the FP student is the same
model with plain ``nn.Linear`` layers, training the same weights. Both students share the
analog layers' weight tensors and one Adam optimizer (the work per step is that of two
separate ones; the memory is not doubled), on the same token batch.
"""
from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
from torch import nn

import aimc
from aimc import cpp
from aimc.experiments.bench import _median_pair
from aimc.experiments.common import num_threads
from aimc.nn.convert import analog_layers
from aimc.train.hat import HATConfig, enable_hat
from aimc.workloads import llm
from aimc.workloads.llm_distill import DISTILL_HAT, distill_step, trainable_student

__all__ = ["fp_student", "bench_llm_hat"]


def fp_student(teacher: nn.Module, student: nn.Module) -> nn.Module:
    """A copy of ``teacher`` whose ``nn.Linear`` weights are the analog layers' weight
    parameters of ``student`` (its converted copy), trainable; every other tensor is the
    teacher's own (shared, frozen), so the copy costs no weight memory. A tied ``lm_head``
    is untied from the embedding, as ``convert`` unties it.

    Example:
        >>> import torch, aimc
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3))
        >>> fp = fp_student(net, aimc.convert(net, "ideal"))
        >>> fp[0].weight is net[0].weight
        False
    """
    analog = dict(analog_layers(student))
    memo: dict[int, Any] = {id(t): t for t in list(teacher.parameters()) + list(teacher.buffers())}
    fp = copy.deepcopy(teacher, memo)
    for name, m in fp.named_modules():
        if isinstance(m, nn.Linear) and name in analog:
            m.weight = analog[name].weight
    return fp


def bench_llm_hat(model: nn.Module | str | None = None, chip: str = "pcm-hermes", batch: int = 4, seq: int = 128,
                  repeats: int = 3, warmup: int = 1, seed: int = 0, lr: float = 2e-5,
                  hat: HATConfig = DISTILL_HAT, threads: int | None = 1) -> dict[str, Any]:
    """Median ms of one HAT distillation step against the FP step (interleaved runs).

    Args:
        model: a causal LM, a path for :func:`~aimc.workloads.llm.load_smollm2`, or None
            for SmolLM2-135M; it is the teacher and is not changed.
        chip: the chip the HAT student is converted to.
        batch, seq: sequences and tokens per step (a fixed token pattern; the timing does
            not depend on the tokens). Defaults: 512 tokens per step (the HAT row of
            :func:`aimc.experiments.llm.llm_table` takes 2 x 64; the weight-side work is per
            step and the read's per token, so the ratio falls as tokens per step grow).
        repeats, warmup: timed and untimed steps of each student, interleaved with
            alternating order (:func:`aimc.experiments.bench._median_pair`).
        threads: torch intra-op threads meanwhile (None: as set).

    Returns:
        ``ms`` (HAT step), ``fp_ms`` (FP step), ``ratio``, ``tokens`` per step, ``params``
        trained, ``layers`` (analog), ``chip``, ``threads``, ``cpp`` (the fused kernels in
        use), ``batch``, ``seq``, ``repeats``.
    """
    if batch < 1 or seq < 2 or repeats < 1 or warmup < 0:
        raise ValueError(f"bench_llm_hat: need batch >= 1, seq >= 2, repeats >= 1 and warmup >= 0 "
                         f"(got {batch}, {seq}, {repeats}, {warmup})")
    with num_threads(threads):
        return _bench(model, chip, batch, seq, repeats, warmup, seed, lr, hat)


def _bench(model, chip, batch, seq, repeats, warmup, seed, lr, hat) -> dict[str, Any]:
    label = "SmolLM2-135M-Instruct" if model is None else model if isinstance(model, str) else type(model).__name__
    if model is None or isinstance(model, str):
        model, _ = llm.load_smollm2(model, tokenizer=False)
    teacher = model.eval()
    frozen = {p: p.requires_grad for p in teacher.parameters()}  # shared with the FP student: no gradients
    for p in frozen:
        p.requires_grad_(False)
    with warnings.catch_warnings():  # the tile capacity warning: bench llm reports it
        warnings.simplefilter("ignore", UserWarning)
        student = aimc.convert(teacher, chip)
    params = trainable_student(student, hat, seed)
    fp = fp_student(teacher, student)
    opt = torch.optim.Adam(params, lr=lr)
    vocab = int(getattr(getattr(teacher, "config"), "vocab_size"))
    x = ((torch.arange(batch * seq) * 7 + 100) % vocab).view(batch, seq)
    student.train()
    fp.train()
    try:
        ms, fp_ms = _median_pair(lambda: distill_step(student, teacher, x, opt),
                                 lambda: distill_step(fp, teacher, x, opt), repeats, warmup)
    finally:
        enable_hat(student, None)
        for p, flag in frozen.items():
            p.requires_grad_(flag)
    layers = [m for _, m in analog_layers(student)]
    return {"name": "llm-hat", "model": label,
            "chip": chip, "ms": round(ms, 3), "fp_ms": round(fp_ms, 3), "ratio": round(ms / fp_ms, 3),
            "batch": batch, "seq": seq, "tokens": batch * seq, "layers": len(layers),
            "params": sum(m.weight.numel() for m in layers), "threads": torch.get_num_threads(),
            "cpp": cpp.available(), "repeats": repeats, "warmup": warmup}

