"""HAT fine-tuning; its trained model saves as a ``weights`` checkpoint with the learned
input ranges, and loads back into a digital model and its converted twin."""
import torch
from torch import nn

import aimc
from aimc.train.fit import hat_finetune


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def test_afm_checkpoint_round_trips_learned_input_ranges(tmp_path):
    x, y = torch.randn(128, 6), torch.arange(128) % 3
    trained = hat_finetune(_net(), x, y, "pcm-hermes", "afm", epochs=1, seed=0)
    ranges = [float(m.input_range.detach()) for _, m in aimc.nn.analog_layers(trained)]
    assert all(r > 0 for r in ranges)
    path = aimc.nn.save_state(trained, tmp_path / "m.safetensors", run={"dataset": "toy"})
    ck = aimc.nn.read_checkpoint(path)
    assert ck.kind == "weights" and ck.run == {"dataset": "toy"} and set(ck.chips) == {"0", "2"}
    assert not any(k.endswith(("g_uS", "read_seed")) for k in ck.state)  # weights, not a chip
    digital = _net()
    aimc.nn.load_state(digital, ck)
    analog = aimc.convert(digital, "pcm-hermes")
    aimc.nn.load_state(analog, ck)
    assert torch.equal(digital[0].weight, trained[0].weight)
    assert [float(m.input_range.detach()) for _, m in aimc.nn.analog_layers(analog)] == ranges
    assert not any(m.is_programmed for _, m in aimc.nn.analog_layers(analog))
