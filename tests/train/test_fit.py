"""Checkpoints carry the weights and the trained digital parts of analog layers."""
import pytest
import torch
from torch import nn

import aimc
from aimc.train.fit import hat_finetune, load_checkpoint, load_into, save_checkpoint


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def test_afm_checkpoint_round_trips_learned_input_ranges(tmp_path):
    x, y = torch.randn(128, 6), torch.arange(128) % 3
    trained = hat_finetune(_net(), x, y, "pcm-hermes", "afm", epochs=1, seed=0)
    ranges = [float(m.input_range.detach()) for _, m in aimc.nn.analog_layers(trained)]
    assert all(r > 0 for r in ranges)
    path = tmp_path / "m.safetensors"
    save_checkpoint(trained, path, {"dataset": "toy"})
    state, meta = load_checkpoint(path)
    assert not any(k.endswith(("g_uS", "read_seed")) for k in state)  # weights, not a chip
    digital = _net()
    analog = aimc.convert(digital, "pcm-hermes")
    load_into(digital, analog, state)
    assert torch.equal(digital[0].weight, trained[0].weight)
    assert [float(m.input_range.detach()) for _, m in aimc.nn.analog_layers(analog)] == ranges
    with pytest.raises(ValueError, match="lacks"):
        load_into(nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)), aimc.convert(nn.Sequential(
            nn.Linear(6, 8)), "ideal"), {**state, "5.out_gain": torch.ones(3)})
