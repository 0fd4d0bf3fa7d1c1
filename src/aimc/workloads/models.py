"""Small CNNs for the demo data sets, with a seeded initialisation.

Example:
    >>> import torch
    >>> digits_cnn(seed=0)(torch.zeros(1, 1, 8, 8)).shape
    torch.Size([1, 10])
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

__all__ = ["digits_cnn", "fashion_cnn", "seeded"]

@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Run the block with torch's global RNG seeded, restoring its state afterwards."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def digits_cnn(seed: int | None = None) -> nn.Sequential:
    """CNN for 1x8x8 digits: two 3x3 conv blocks and a linear classifier (6,090 params).

    Args:
        seed: seed of the weight initialisation, drawn without touching torch's global
            RNG state; None uses (and advances) the global RNG.

    Example:
        >>> import torch
        >>> digits_cnn(seed=0)(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """
    with seeded(seed):
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # (B, 16, 4, 4)
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 2, 2)
            nn.Flatten(), nn.Linear(32 * 2 * 2, 10),
        )


def fashion_cnn(seed: int | None = None) -> nn.Sequential:
    """CNN for 1x28x28 Fashion-MNIST: two 5x5 conv blocks, a 32-unit hidden layer (63,786 params).

    Args:
        seed: seed of the weight initialisation (see :func:`digits_cnn`).

    Example:
        >>> import torch
        >>> fashion_cnn(seed=0)(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    with seeded(seed):
        return nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),   # (B, 16, 14, 14)
            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 7, 7)
            nn.Flatten(), nn.Linear(32 * 7 * 7, 32), nn.ReLU(), nn.Linear(32, 10),
        )
