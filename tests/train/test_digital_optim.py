"""train_digital's optimiser options: decoupled weight decay (AdamW) under fairseq's
inverse-square-root warm-up. A parameter whose gradient is exactly zero gets no Adam
step, only the decay, so after n steps it equals prod_t (1 - lr_t * wd) exactly, with
lr_t = lr * min((t+1)/w, sqrt(w/(t+1)))."""
import math

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
