"""Hybrid on-device fine-tuning: only digital parts change; adapters start neutral."""
import pytest
import torch
from torch import nn

import aimc
from aimc.train.hybrid import LowRankAdapter, add_adapters, hybrid_finetune


def _deployed(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 3))
    a = aimc.convert(net, "pcm-hermes")
    aimc.program(a, seed=seed)
    aimc.drift(a, 2_592_000.0)
    aimc.compensate(a)
    return a


def _reset_reads(model):
    for _, m in aimc.nn.analog_layers(model):
        m._invalidate()


def test_adapters_start_neutral():
    a = _deployed()
    x = torch.randn(8, 1, 5, 5)
    _reset_reads(a)
    with torch.no_grad():
        before = a(x)
    add_adapters(a, rank=2)
    assert isinstance(a[0], LowRankAdapter) and isinstance(a[3], LowRankAdapter)
    _reset_reads(a)
    with torch.no_grad():
        assert torch.equal(a(x), before)


def test_only_the_chosen_digital_parts_change():
    a = _deployed()
    frozen = {k: v.clone() for k, v in a.state_dict().items() if not k.endswith("bias")}
    x, y = torch.randn(64, 1, 5, 5), torch.arange(64) % 3
    hybrid_finetune(a, x, y, parts=("bias",), epochs=2, lr=1e-2)
    after = a.state_dict()
    assert all(torch.equal(after[k], v) for k, v in frozen.items())  # weights, chip state, gains
    assert not torch.equal(after["3.bias"], _deployed()[3].bias)


def test_adapter_gradients_flow_through_the_chip_read():
    a = _deployed()
    x, y = torch.randn(64, 1, 5, 5), torch.arange(64) % 3
    hybrid_finetune(a, x, y, parts=("adapter",), rank=2, epochs=1, lr=1e-2)
    assert a[0].up.weight.abs().sum() > 0  # first layer's adapter trained through layer 3's chip read


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="parts"):
        hybrid_finetune(_deployed(), torch.randn(4, 1, 5, 5), torch.zeros(4, dtype=torch.long), parts=("weights",))
    unprogrammed = aimc.convert(nn.Sequential(nn.Linear(3, 2)), "pcm-hermes")
    with pytest.raises(ValueError, match="program the model first"):
        hybrid_finetune(unprogrammed, torch.randn(4, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="rank"):
        add_adapters(_deployed(), rank=0)


@pytest.mark.slow
def test_hybrid_finetuning_recovers_accuracy_of_a_drifted_digits_chip():
    """Five chips, one month after programming: on-device fine-tuning of biases, gains and
    rank-4 adapters on 500 training images wins accuracy back on every chip on average
    (measured: 96.25 % deployed -> 97.08 % on two chips)."""
    from aimc.experiments.hat_table import hybrid_table

    r = hybrid_table("digits", n_chips=5, n_calib=500, variants=(("bias", "out_gain", "adapter"),))
    assert r["rows"][0]["mean"] > r["deployed"]["mean"] + 0.003
