"""train_digital's optimiser options: decoupled weight decay (AdamW) under fairseq's
inverse-square-root warm-up. A parameter whose gradient is exactly zero gets no Adam
step, only the decay, so after n steps it equals prod_t (1 - lr_t * wd) exactly, with
lr_t = lr * min((t+1)/w, sqrt(w/(t+1)))."""
import math

import pytest
import torch
from torch import nn

from aimc.train.digital import train_digital


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.idle = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.lin(x) + 0.0 * self.idle  # gradient of idle: exactly 0


def test_decay_follows_the_warmup_schedule():
    x, y = torch.randn(40, 3, generator=torch.Generator().manual_seed(0)), torch.arange(40) % 2
    net = _Net()
    lr, wd, w = 0.01, 0.1, 3
    train_digital(net, x, y, epochs=2, lr=lr, batch_size=8, weight_decay=wd, warmup_steps=w, clip_norm=0.5)
    expect = math.prod(1 - lr * min((t + 1) / w, math.sqrt(w / (t + 1))) * wd for t in range(10))
    assert math.isclose(float(net.idle.detach()), expect, rel_tol=1e-6)


def test_frozen_parameters_untouched():
    net = _Net()
    net.lin.weight.requires_grad_(False)
    w0 = net.lin.weight.detach().clone()
    train_digital(net, torch.randn(16, 3), torch.arange(16) % 2, epochs=1, lr=0.1, batch_size=4, weight_decay=0.5)
    assert torch.equal(net.lin.weight, w0)


def test_decay_follows_the_cosine_schedule():
    """Warm-up over w steps, then lr_t = lr (1 + cos(pi (t - w) / (T - w))) / 2 to 0 at step T."""
    x, y = torch.randn(40, 3, generator=torch.Generator().manual_seed(0)), torch.arange(40) % 2
    net = _Net()
    lr, wd, w, total = 0.01, 0.1, 3, 10
    train_digital(net, x, y, epochs=2, lr=lr, batch_size=8, weight_decay=wd, warmup_steps=w, schedule="cosine")
    rates = [lr * ((t + 1) / w if t < w else 0.5 * (1 + math.cos(math.pi * (t - w) / (total - w))))
             for t in range(total)]
    assert rates[-1] < 0.05 * lr  # the last step runs at a small fraction of the peak rate
    assert math.isclose(float(net.idle.detach()), math.prod(1 - r * wd for r in rates), rel_tol=1e-6)


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="schedule"):
        train_digital(_Net(), torch.randn(4, 3), torch.arange(4) % 2, epochs=1, schedule="linear")


def test_dropout_draws_do_not_depend_on_what_ran_before():
    """Same seed, same model, whatever the global RNG's state; and that state is left as it was."""
    def trained(burn: int) -> torch.Tensor:
        torch.manual_seed(1234)
        torch.rand(burn)  # other work advanced the global generator
        net = nn.Sequential(nn.Linear(3, 16), nn.Dropout(0.5), nn.Linear(16, 2))
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.linspace(-0.5, 0.5, p.numel()).view_as(p))
        before = torch.random.get_rng_state()
        train_digital(net, torch.linspace(-1, 1, 48).view(16, 3), torch.arange(16) % 2, epochs=2, lr=0.05,
                      batch_size=4, seed=7)
        assert torch.equal(torch.random.get_rng_state(), before)
        return torch.cat([p.detach().flatten() for p in net.parameters()])

    a, b = trained(0), trained(1000)
    assert torch.equal(a, b)
