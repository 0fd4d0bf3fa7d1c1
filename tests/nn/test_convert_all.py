"""convert maps every matrix-vector layer and says what it did (issue 10, item 2):
attention, recurrent layers, Conv3d, Linear subclasses and tied modules used to be left
digital without a word."""
import warnings

import pytest
import torch
from torch import nn

import aimc
from aimc.nn import (CONVERSIONS, AnalogConv3d, AnalogConvTranspose1d, AnalogConvTranspose2d, AnalogGRU,
                     AnalogLinear, AnalogLSTM, AnalogMultiheadAttention,
                     AnalogRNN, conversion_report, conversion_target)


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("digital, cls, x", [
    (nn.LSTM(5, 6, num_layers=2, bidirectional=True, batch_first=True), AnalogLSTM, torch.randn(3, 4, 5)),
    (nn.LSTM(5, 6, proj_size=3), AnalogLSTM, torch.randn(4, 3, 5)),
    (nn.GRU(5, 6, num_layers=2, bidirectional=True), AnalogGRU, torch.randn(4, 3, 5)),
    (nn.RNN(5, 6, nonlinearity="relu", bias=False), AnalogRNN, torch.randn(4, 3, 5)),
    (nn.Conv3d(2, 3, (2, 3, 3), stride=(1, 2, 1), padding=1, dilation=(1, 1, 2)), AnalogConv3d,
     torch.randn(2, 2, 5, 6, 7)),
    (nn.ConvTranspose2d(4, 3, (3, 2), stride=(2, 3), padding=(1, 0), output_padding=(1, 2), dilation=(1, 2)),
     AnalogConvTranspose2d, torch.randn(2, 4, 5, 6)),
    (nn.ConvTranspose1d(4, 3, 3, stride=2, padding=1, output_padding=1, dilation=2, bias=False),
     AnalogConvTranspose1d, torch.randn(2, 4, 7)),
])
def test_layer_converts_and_equals_torch_on_the_ideal_chip(digital, cls, x):
    torch.manual_seed(0)
    a, rep = aimc.convert(digital, "ideal", report=True)
    assert type(a) is cls
    assert rep.params_on_tiles + rep.params_digital == _n_params(digital) and not rep.digital_mvm
    y, y_ref = a(x), digital(x)
    y, y_ref = (y[0], y_ref[0]) if isinstance(y, tuple) else (y, y_ref)
    torch.testing.assert_close(y, y_ref, atol=2e-6, rtol=1e-5)


def test_recurrent_state_matches_torch_with_initial_state():
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 6, num_layers=2)
    a = aimc.convert(lstm, "ideal")
    x, h0, c0 = torch.randn(4, 3, 5), torch.randn(2, 3, 6), torch.randn(2, 3, 6)
    (y, (h, c)), (y_ref, (h_ref, c_ref)) = a(x, (h0, c0)), lstm(x, (h0, c0))
    for u, v in ((y, y_ref), (h, h_ref), (c, c_ref)):
        torch.testing.assert_close(u, v, atol=2e-6, rtol=1e-5)


def test_recurrent_layer_on_a_noisy_chip_is_analog():
    torch.manual_seed(0)
    gru = nn.GRU(8, 16)
    a = aimc.convert(gru, "pcm-hermes")
    aimc.program(a, seed=0)
    assert len(list(aimc.nn.analog_layers(a))) == 2
    with torch.no_grad():
        x = torch.randn(6, 2, 8)
        assert not torch.allclose(a(x)[0], gru(x)[0], atol=1e-3)


def test_linear_subclass_converts_by_the_nearest_table_entry():
    mha = nn.MultiheadAttention(8, 2)
    assert type(mha.out_proj) is not nn.Linear and isinstance(mha.out_proj, nn.Linear)
    assert type(aimc.convert(mha.out_proj, "ideal")) is AnalogLinear
    assert conversion_target(mha) is AnalogMultiheadAttention

    class MyLinear(nn.Linear):
        pass

    class MyAnalog(AnalogLinear):
        pass

    net = nn.Sequential(MyLinear(4, 4), nn.Linear(4, 2))
    assert type(aimc.convert(net, "ideal")[0]) is AnalogLinear
    CONVERSIONS[MyLinear] = MyAnalog  # a more specific entry wins
    try:
        a = aimc.convert(net, "ideal")
        assert type(a[0]) is MyAnalog and type(a[1]) is AnalogLinear
    finally:
        del CONVERSIONS[MyLinear]


def test_tied_module_converts_once_and_stays_shared():
    lin = nn.Linear(4, 4)
    a, rep = aimc.convert(nn.Sequential(lin, nn.ReLU(), lin), "pcm", report=True)
    assert isinstance(a[0], AnalogLinear) and a[0] is a[2]
    assert len(rep.layers) == 1 and "shared, also 2" in rep.layers[0].detail
    assert rep.params_on_tiles == 16 and rep.params_digital == 4


class _Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.attn = nn.MultiheadAttention(4, 2, batch_first=True)
        self.up = nn.ConvTranspose3d(2, 2, 3)
        self.grouped = nn.Conv2d(4, 4, 3, groups=2)
        self.bil = nn.Bilinear(2, 2, 2)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 10)


def test_report_names_every_digital_layer_with_its_reason_and_warns_about_matrices():
    with pytest.warns(UserWarning, match=r"matrix layers stay digital: up \(ConvTranspose3d.*?\); grouped "
                                         r"\(Conv2d: groups=2.*?\); bil \(Bilinear"):
        a, rep = aimc.convert(_Mixed(), "pcm", report=True)
    rows = {r.name: r for r in rep.layers}
    assert {n for n, r in rows.items() if r.on_tiles} == {"attn.q_proj", "attn.k_proj", "attn.v_proj",
                                                          "attn.out_proj", "head"}
    assert "table lookup" in rows["emb"].detail and not rows["emb"].mvm  # digital by nature: no warning
    assert "element-wise" in rows["norm"].detail and not rows["norm"].mvm
    assert [r.name for r in rep.digital_mvm] == ["up", "grouped", "bil"]
    assert rep.params_on_tiles == 4 * 16 + 40 and rep.params_on_tiles + rep.params_digital == _n_params(_Mixed())
    text = str(rep)
    assert "emb" in text and "matrix layers kept digital: up, grouped, bil" in text
    assert rep.to_dict()["params_on_tiles"] == rep.params_on_tiles


def test_filtered_layers_are_reported_but_not_warned_about():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a, rep = aimc.convert(nn.Sequential(nn.Linear(4, 4), nn.MultiheadAttention(4, 2)), "pcm",
                              filter=lambda name, m: name != "1", report=True)
    assert type(a[1]) is nn.MultiheadAttention and type(a[1].out_proj) is not AnalogLinear  # digital as a whole
    row = {r.name: r for r in rep.layers}["1"]
    assert not row.on_tiles and "filter" in row.detail and row.params_digital == _n_params(a[1])


def test_conversion_report_of_a_digital_model_lists_convertible_layers():
    rep = conversion_report(nn.Sequential(nn.Linear(3, 3), nn.LSTM(3, 3)))
    assert rep.params_on_tiles == 0 and [r.name for r in rep.digital_mvm] == ["0", "1"]
    assert "convertible to AnalogLSTM" in rep.layers[1].detail


def test_transposed_convolution_on_a_noisy_chip_reads_the_tiles_and_trains_through():
    torch.manual_seed(0)
    up = nn.ConvTranspose2d(4, 3, 3, stride=2)
    a = aimc.convert(up, "pcm-hermes")
    aimc.program(a, seed=0)
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    y = a(x)
    assert y.shape == up(x).shape and not torch.allclose(y, up(x), atol=1e-3)
    y.sum().backward()  # straight-through gradient of the chip read
    assert x.grad is not None and a.out_gain.shape == (3 * 9,)
