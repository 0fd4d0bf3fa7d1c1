"""Digital training recipes of the demo networks, one per data set.

Example:
    >>> sorted(RECIPES)
    ['digits', 'fashion-mnist']
"""
from __future__ import annotations

from typing import Any

from aimc.workloads.models import digits_cnn, fashion_cnn

__all__ = ["RECIPES"]

#: Model and digital training recipe per data set; ``max_test`` None: whole test set;
#: ``threads``: torch intra-op threads while the demo runs (None: leave as set). The
#: digits tensors are too small for threads to pay off, and on a busy machine OpenMP
#: spin-waits made a 1 s training take 100 s on 2 threads, so digits runs on one.
RECIPES: dict[str, dict[str, Any]] = {
    "digits": dict(model=digits_cnn, epochs=30, lr=3e-3, batch_size=32, max_test=None, threads=1),
    "fashion-mnist": dict(model=fashion_cnn, epochs=3, lr=1e-3, batch_size=128, max_test=2000, threads=None),
}
