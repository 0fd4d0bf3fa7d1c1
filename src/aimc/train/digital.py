"""Plain digital training: a seeded Adam loop, top-1 accuracy, parameter count.

The floating-point reference every analog recipe starts from (and compares against).

Example:
    >>> import torch
    >>> from aimc.train.digital import train_digital, accuracy
    >>> x, y = torch.randn(64, 4), (torch.arange(64) % 2)
    >>> net = train_digital(torch.nn.Linear(4, 2), x, y, epochs=1, lr=1e-2, batch_size=16, seed=0)
    >>> 0.0 <= accuracy(net, x, y) <= 1.0
    True
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from aimc.seeding import seeded

__all__ = ["train_digital", "accuracy", "correct", "n_params", "Progress"]

#: ``progress(advance, total, description)``: ``advance`` units done since the last call.
Progress = Callable[[int, int, str], None]


def n_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def train_digital(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 30, lr: float = 3e-3,
                  batch_size: int = 64, seed: int = 0, progress: Progress | None = None, *,
                  weight_decay: float = 0.0, clip_norm: float | None = None, warmup_steps: int = 0,
                  betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                  schedule: str = "inverse_sqrt") -> nn.Module:
    """Train ``model`` in place with Adam and cross-entropy; deterministic for a seed.

    Mini-batches are drawn from a private ``torch.Generator`` seeded with ``seed``; the
    model's own random draws (dropout) come from the global generator, reseeded from
    ``seed`` inside :func:`aimc.seeding.seeded` and restored afterwards: the caller's
    RNG state is left as it was, and a model trains the same whatever ran before it.

    Args:
        model: the network (trained in place and returned, left in eval mode).
        x: inputs ``(N, ...)``; y: int64 class labels ``(N,)``.
        epochs: passes over the data (>= 1); lr: Adam learning rate; batch_size: >= 1.
        seed: seed of the shuffling.
        progress: optional ``progress(1, epochs, "training")`` called after each epoch.
        weight_decay: decoupled weight decay (AdamW, as fairseq's Adam); 0: plain Adam.
        clip_norm: clip the gradients' global norm at this value (None: no clipping).
        warmup_steps: the learning rate rises linearly to ``lr`` over this many steps, then
            follows ``schedule`` (0 with ``inverse_sqrt``: a constant rate).
        schedule: ``inverse_sqrt`` (fairseq's: after the warm-up the rate falls as
            ``1/sqrt(step)``; only with ``warmup_steps > 0``) or ``cosine`` (after the warm-up
            it falls as a half cosine to 0 at the last step, Loshchilov & Hutter, ICLR 2017),
            which ends training on a settled model instead of one still moving at a
            sizeable rate.
        betas, eps: Adam's.

    Example:
        >>> import torch
        >>> net = torch.nn.Linear(4, 2)
        >>> x, y = torch.randn(32, 4), (torch.arange(32) % 2)
        >>> net = train_digital(net, x, y, epochs=2, lr=1e-2, batch_size=8, seed=0)
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got epochs={epochs}, batch_size={batch_size}")
    if schedule not in ("inverse_sqrt", "cosine"):
        raise ValueError(f"schedule must be 'inverse_sqrt' or 'cosine', got {schedule!r}")
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
    gen = torch.Generator().manual_seed(int(seed))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay) if weight_decay > 0
           else torch.optim.Adam(params, lr=lr, betas=betas, eps=eps))
    sched = None
    w = float(warmup_steps)
    if schedule == "cosine":
        decay = max(1.0, epochs * math.ceil(len(x) / batch_size) - w)  # steps after the warm-up
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: (s + 1) / w if s < w else 0.5 * (1.0 + math.cos(math.pi * min(1.0, (s - w) / decay))))
    elif warmup_steps > 0:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / w, (w / (s + 1)) ** 0.5))
    loss_fn = nn.CrossEntropyLoss()
    cuda = sorted({p.device.index or 0 for p in params if p.device.type == "cuda"})
    with seeded(int(seed) + 1, devices=cuda):  # dropout's stream, apart from the shuffling's
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x), batch_size):
                idx = order[i: i + batch_size]
                opt.zero_grad(set_to_none=True)
                loss_fn(model(x[idx]), y[idx]).backward()
                if clip_norm is not None:
                    nn.utils.clip_grad_norm_(params, clip_norm)
                opt.step()
                if sched is not None:
                    sched.step()
            if progress is not None:
                progress(1, epochs, "training")
    model.eval()
    return model


@torch.no_grad()
def correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Per sample, whether the top-1 prediction is right: a bool tensor ``(N,)``, in eval
    mode and without gradients (the model's train/eval mode is restored afterwards).

    Example:
        >>> import torch
        >>> net = torch.nn.Linear(2, 2)
        >>> correct(net, torch.zeros(4, 2), torch.zeros(4, dtype=torch.long)).shape
        torch.Size([4])
    """
    if len(x) == 0:
        raise ValueError("accuracy: empty data set")
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(x[i: i + batch_size]).argmax(dim=1) == y[i: i + batch_size]
                          for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy in [0, 1] (:func:`correct` averaged).

    Example:
        >>> import torch
        >>> net = torch.nn.Linear(2, 2)
        >>> accuracy(net, torch.zeros(4, 2), torch.zeros(4, dtype=torch.long)) in (0.0, 1.0)
        True
    """
    return int(correct(model, x, y, batch_size).sum()) / len(x)
