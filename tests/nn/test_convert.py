"""convert / program / drift / compensate, state round-trips and bad input."""
import pytest
import torch
from torch import nn

import aimc
from aimc.nn import AnalogConv2d, AnalogLinear, load_state, save_state


def small_net():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10), nn.Softmax(-1))


def test_convert_replaces_linear_and_conv_and_keeps_original():
    net = small_net()
    a = aimc.convert(net, "pcm")
    assert isinstance(a[0], AnalogConv2d) and isinstance(a[3], AnalogLinear)
    assert isinstance(a[1], nn.ReLU) and isinstance(a[4], nn.Softmax)
    assert type(net[0]) is nn.Conv2d  # the original is untouched
    assert torch.equal(a[3].weight, net[3].weight)


def test_convert_filter_keeps_layers_digital():
    a = aimc.convert(small_net(), "pcm", filter=lambda name, m: not isinstance(m, nn.Conv2d))
    assert type(a[0]) is nn.Conv2d and isinstance(a[3], AnalogLinear)


def test_grouped_conv_stays_digital_with_warning():
    net = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2))
    with pytest.warns(UserWarning, match="groups=2"):
        a = aimc.convert(net, "pcm")
    assert type(a[0]) is nn.Conv2d


def test_same_seed_same_chip_and_reads():
    net = small_net()
    x = torch.rand(3, 1, 8, 8)
    outs = []
    for _ in range(2):
        a = aimc.convert(net, "pcm")
        aimc.program(a, seed=5)
        outs.append((a[3].g_uS.clone(), a(x), a(x)))
    assert torch.equal(outs[0][0], outs[1][0])
    assert torch.equal(outs[0][1], outs[1][1]) and torch.equal(outs[0][2], outs[1][2])
    assert not torch.equal(outs[0][1], outs[0][2])  # read noise: each read differs
    b = aimc.convert(net, "pcm")
    aimc.program(b, seed=6)
    assert not torch.equal(b[3].g_uS, outs[0][0])


def test_drift_shrinks_outputs_and_compensation_restores_them():
    torch.manual_seed(1)
    lin = nn.Linear(200, 50, bias=False)
    a = aimc.convert(lin, "pcm")
    aimc.program(a, seed=0)
    x = torch.rand(256, 200)
    with torch.no_grad():
        y0 = a(x).abs().mean()
        aimc.drift(a, 3.15e7)
        y1 = a(x).abs().mean()
        aimc.compensate(a)
        y2 = a(x).abs().mean()
    assert y1 < 0.8 * y0  # one year of drift (nu ~ 0.05): (3.15e7/20)^-0.05 ~ 0.49
    assert abs(float(y2 / y0) - 1) < 0.1
    aimc.compensate(a, enable=False)
    assert float(a.gdc) == 1.0


def test_state_roundtrip_safetensors(tmp_path):
    net = small_net()
    a = aimc.convert(net, "pcm")
    aimc.program(a, seed=3)
    aimc.drift(a, 86400.0)
    aimc.compensate(a)
    path = tmp_path / "chip.safetensors"
    save_state(a, path)
    with pytest.raises(FileExistsError):
        save_state(a, path)
    b = aimc.convert(net, "pcm")
    load_state(b, path)
    for name, buf in a.state_dict().items():
        assert torch.equal(buf, b.state_dict()[name]), name
    x = torch.rand(2, 1, 8, 8)
    a2 = aimc.convert(net, "pcm")
    load_state(a2, path)
    assert torch.equal(a2(x), b(x))  # same read-noise stream after loading
    wrong = aimc.convert(net, "ecram")
    with pytest.raises(ValueError, match="chip"):
        load_state(wrong, path)


def test_state_dict_roundtrip_in_memory():
    a = aimc.convert(nn.Linear(300, 7), "pcm")
    aimc.program(a, seed=1)
    b = aimc.convert(nn.Linear(300, 7), "pcm")
    b.load_state_dict(a.state_dict())
    assert b.is_programmed and torch.equal(b.g_uS, a.g_uS)


def test_bad_inputs_name_the_problem():
    a = aimc.convert(nn.Linear(10, 3), "pcm")
    aimc.program(a, seed=0)
    with pytest.raises(ValueError, match=r"last dimension must be 10.*\(4, 9\)"):
        a(torch.ones(4, 9))
    with pytest.raises(ValueError, match="NaN or Inf"):
        a(torch.tensor([[float("nan")] * 10]))
    with pytest.raises(ValueError, match="NaN or Inf"):
        a(torch.tensor([[float("inf")] + [0.0] * 9]))
    conv = aimc.convert(nn.Conv2d(2, 3, 3), "pcm")
    with pytest.raises(ValueError, match=r"\(batch, 2"):
        conv(torch.ones(1, 3, 8, 8))
    lin = nn.Linear(4, 2)
    with torch.no_grad():
        lin.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        aimc.program(aimc.convert(lin, "pcm"), seed=0)
    with pytest.raises(ValueError, match="no analog layers"):
        aimc.program(nn.ReLU(), seed=0)
    with pytest.raises(ValueError, match="t_s"):
        aimc.drift(a, -1.0)
    with pytest.raises(RuntimeError, match="program"):
        aimc.compensate(aimc.convert(nn.Linear(3, 3), "pcm"))


def test_layer_constructor_takes_chip_keyword():
    layer = AnalogLinear(16, 4, chip="pcm")
    assert layer.chip.name == "pcm" and layer.weight.shape == (4, 16)
    assert "unprogrammed" in repr(layer)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_runs_on_cuda():
    a = aimc.convert(small_net(), "pcm").cuda()
    aimc.program(a, seed=0)
    aimc.drift(a, 3600.0)
    aimc.compensate(a)
    assert a(torch.rand(2, 1, 8, 8, device="cuda")).is_cuda
