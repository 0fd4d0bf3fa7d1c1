"""The named models of `aimc compile` are the same weights whatever the process's thread count."""
from __future__ import annotations

import torch

from aimc.workloads.compile_models import TRAIN_THREADS, load_model


def test_named_model_weights_do_not_depend_on_the_thread_count():
    before = torch.get_num_threads()
    weights = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            m = load_model("digits-cnn")
            assert torch.get_num_threads() == threads  # restored after training on TRAIN_THREADS
            weights.append([p.detach().clone() for p in m.module.parameters()])
    finally:
        torch.set_num_threads(before)
    assert TRAIN_THREADS == 1
    assert all(torch.equal(a, b) for a, b in zip(*weights))  # bit for bit
