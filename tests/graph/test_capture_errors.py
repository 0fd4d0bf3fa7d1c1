"""capture's bad input: truncated/malformed ONNX, unsupported ops, torch.export failures."""
import dataclasses
import logging

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from torch import nn

from aimc.config import ConfigError
from aimc.graph import CaptureError, capture
from tests.graph.conftest import MODELS

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


def _tiny_onnx(op_type="Relu", domain=""):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], [0.5] * 16)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"),
             helper.make_node(op_type, ["h"], ["y"], name="odd_node", domain=domain)]
    graph = helper.make_graph(nodes, "g", [x], [y], [w])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=opsets)


def test_truncated_onnx_names_the_file(onnx_files, tmp_path):
    data = onnx_files["cnn"].read_bytes()
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(CaptureError, match=r"cut\.onnx: (not a readable|invalid) ONNX model"):
        capture(bad)
    assert issubclass(CaptureError, ConfigError) and issubclass(CaptureError, ValueError)


def test_unsupported_op_names_node_and_type(tmp_path):
    path = tmp_path / "odd.onnx"
    onnx.save(_tiny_onnx("Hardmax"), path)
    with pytest.raises(CaptureError, match=r"odd\.onnx: node 'odd_node' \(Hardmax\): op type 'Hardmax' is not supported"):
        capture(path)


def test_custom_domain_op_is_refused(tmp_path):
    path = tmp_path / "custom.onnx"
    onnx.save(_tiny_onnx("FancyAct", domain="com.vendor"), path)
    with pytest.raises(CaptureError, match=r"node 'odd_node' \(FancyAct\): custom-domain op com\.vendor::FancyAct"):
        capture(path)


def test_hand_built_onnx_captures(tmp_path):
    path = tmp_path / "ok.onnx"
    onnx.save(_tiny_onnx("Relu"), path)
    g = capture(path)
    assert [(n.name, n.op) for n in g.nodes] == [("fc", "linear"), ("y", "relu")]
    x = torch.randn(3, 4)
    torch.testing.assert_close(g.to_module()(x), torch.relu(x @ torch.full((4, 4), 0.5)))


def test_missing_file_and_wrong_suffix(tmp_path):
    with pytest.raises(CaptureError, match="no such ONNX file"):
        capture(tmp_path / "absent.onnx")
    with pytest.raises(CaptureError, match="not an ONNX file"):
        capture(tmp_path / "model.pt")
    with pytest.raises(CaptureError, match="needs an example_input"):
        capture(nn.Linear(2, 2))


@pytest.mark.filterwarnings("ignore:The tensor attributes self._flat_weights")  # torch.export's note on nn.LSTM
def test_unsupported_pytorch_op_is_named():
    with pytest.raises(CaptureError, match=r"op 'lstm' is not supported by aimc.graph.capture"):
        capture(nn.LSTM(4, 8, batch_first=True), torch.randn(2, 5, 4))


class _LogsPointer(nn.Module):
    """A forward torch.export cannot trace (it reads the input's data pointer); fx can."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 4)
        self.seen = []

    def forward(self, x):
        self.seen.append(x.data_ptr())
        return self.fc2(torch.relu(self.fc1(x)))


def test_export_failure_falls_back_to_fx(caplog):
    model = _LogsPointer().eval()
    x = torch.randn(3, 8)
    with caplog.at_level(logging.WARNING, logger="aimc.graph.from_torch"):
        g = capture(model, x)
    assert g.source == "torch.fx"
    assert "torch.export failed" in caplog.text and "data pointer" in caplog.text
    assert [(n.name, n.op) for n in g.nodes] == [("fc1", "linear"), ("relu", "relu"), ("fc2", "linear")]
    torch.testing.assert_close(g.to_module()(x), model(x))
    seq = nn.Sequential(model.fc1, nn.ReLU(), model.fc2)  # the same function via torch.export
    strip = lambda work: [dataclasses.replace(w, name="") for w in work]  # noqa: E731
    assert strip(capture(seq, x).workload(x)) == strip(g.workload(x))


def test_fx_fallback_failure_says_both(caplog):
    class Opaque(nn.Module):
        def forward(self, x):
            self.p = x.data_ptr()
            return x if x.sum() > 0 else -x  # data-dependent control flow: fx cannot trace it either

    with pytest.raises(CaptureError, match="torch.export failed .* and torch.fx.symbolic_trace failed too"):
        capture(Opaque(), torch.randn(1, 3))


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_malformed_onnx_bytes_are_refused_clearly(data, onnx_files, tmp_path):
    raw = bytearray(onnx_files["mlp"].read_bytes())
    kind = data.draw(st.sampled_from(["truncate", "flip", "random"]))
    if kind == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif kind == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
    else:
        raw = bytearray(data.draw(st.binary(max_size=256)))
    path = tmp_path / "fuzz.onnx"
    path.write_bytes(bytes(raw))
    try:
        g = capture(path)
    except CaptureError as e:
        assert "fuzz.onnx" in str(e)
    else:  # a flip that kept the model valid (e.g. inside a weight): it must still run
        g.to_module()(torch.randn(2, 20))


@pytest.mark.parametrize("key", ["cnn", "mlp", "resblock", "transformer"])
def test_fx_route_gives_the_export_graph(key, monkeypatch):
    model, x = MODELS[key]
    g_export = capture(model, x)

    def refuse(*args, **kwargs):
        raise RuntimeError("export refused by the test")

    monkeypatch.setattr(torch.export, "export", refuse)
    g_fx = capture(model, x)
    assert g_fx.source == "torch.fx"
    assert g_fx.signature() == g_export.signature() and g_fx.fingerprint() == g_export.fingerprint()
    torch.testing.assert_close(g_fx.to_module()(x), model(x), rtol=1e-5, atol=1e-5)


def test_fx_route_follows_size_arithmetic(monkeypatch):
    class Flat(nn.Module):  # x.view(x.size(0), -1): shape arithmetic in the traced graph
        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(1, 2, 3), nn.Linear(2 * 4 * 4, 3)

        def forward(self, x):
            h = self.conv(x)
            return self.fc(h.view(h.size(0), h.size(1) * h.size(2) * h.size(3)))

    def refuse(*args, **kwargs):
        raise RuntimeError("export refused by the test")

    model, x = Flat(), torch.randn(3, 1, 6, 6)
    monkeypatch.setattr(torch.export, "export", refuse)
    g = capture(model, x)
    assert g.source == "torch.fx" and [n.op for n in g.nodes] == ["conv", "reshape", "linear"]
    torch.testing.assert_close(g.to_module()(x), model(x))
