"""Tests of aimc.workloads.models and aimc.train.digital: CNN shapes and sizes, seeded init, deterministic training."""
import pytest
import torch

from aimc.workloads.data import load_digits
from aimc.workloads.models import digits_cnn, fashion_cnn
from aimc.train.digital import accuracy, n_params, train_digital
@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


def test_cnn_shapes_and_sizes():
    assert digits_cnn(seed=0)(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
    assert fashion_cnn(seed=0)(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert n_params(digits_cnn()) < 50_000
    assert n_params(fashion_cnn()) < 100_000
    convs = [m for m in digits_cnn().modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 2 and all(c.groups == 1 for c in convs)  # all map onto tiles


def test_seeded_init_is_reproducible_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a, b = digits_cnn(seed=5), digits_cnn(seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    c = digits_cnn(seed=6)
    assert not torch.equal(a[0].weight, c[0].weight)


def test_training_is_deterministic_and_learns(digits):
    x_tr, y_tr, x_te, y_te = digits
    calls = []
    kw = dict(epochs=8, lr=3e-3, batch_size=32, seed=1)
    m1 = train_digital(digits_cnn(seed=0), x_tr, y_tr, progress=lambda *a: calls.append(a), **kw)
    m2 = train_digital(digits_cnn(seed=0), x_tr, y_tr, **kw)
    assert all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters()))
    assert calls == [(1, 8, "training")] * 8
    assert not m1.training
    assert accuracy(m1, x_te, y_te) > 0.9


def test_accuracy_restores_mode_and_counts_correctly():
    net = torch.nn.Linear(2, 2)
    with torch.no_grad():
        net.weight.copy_(torch.eye(2))
        net.bias.zero_()
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1, 1, 1])
    net.train()
    assert accuracy(net, x, y, batch_size=3) == 0.75
    assert net.training


def test_bad_arguments():
    x, y = torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="epochs"):
        train_digital(digits_cnn(), x, y, epochs=0)
    with pytest.raises(ValueError, match="differ in length"):
        train_digital(digits_cnn(), x, y[:3], epochs=1)
    with pytest.raises(ValueError, match="empty"):
        accuracy(digits_cnn(), x[:0], y[:0])
