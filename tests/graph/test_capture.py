"""capture: the same model from PyTorch and from its ONNX export gives the same graph, its
workload is extract_workload's, and to_module computes the model's function."""
import pytest
import torch
from torch import nn

from aimc.graph import capture
from aimc.graph.builders import extract_workload_io
from tests.graph.conftest import MODELS, TinyTransformer, export_onnx


@pytest.mark.parametrize("key", list(MODELS))
def test_same_graph_from_pytorch_and_onnx(key, onnx_files):
    model, x = MODELS[key]
    g_torch, g_onnx = capture(model, x), capture(onnx_files[key])
    assert g_torch.source == "torch.export" and g_onnx.source.startswith("onnx:")
    assert g_torch.signature() == g_onnx.signature()
    assert g_torch.fingerprint() == g_onnx.fingerprint()
    assert [n.name for n in g_torch.mvm_nodes()] == [n.name for n in g_onnx.mvm_nodes()]
    for g in (g_torch, g_onnx):  # the ONNX graph runs at any batch size too
        torch.testing.assert_close(g.to_module()(x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("key, exporter", [("transformer", {"dynamo": False}),  # the TorchScript exporter
                                           ("cnn", {"dynamic_shapes": ({0: torch.export.Dim("batch")},)})])
def test_other_exports_give_the_same_graph(key, exporter, tmp_path):
    pytest.importorskip("onnx")
    model, x = MODELS[key]
    g_onnx = capture(export_onnx(model, x, tmp_path / "m.onnx", **exporter))
    g_torch = capture(model, x)
    assert g_onnx.signature() == g_torch.signature() and g_onnx.fingerprint() == g_torch.fingerprint()
    torch.testing.assert_close(g_onnx.to_module()(x), model(x), rtol=1e-5, atol=1e-5)


def test_batchnorm_is_folded_into_the_conv():
    model, x = MODELS["resblock"]
    g = capture(model, x)
    assert "batchnorm" not in g.host_ops() and g.node("stem.0").bias is not None
    assert [(n.name, n.attrs.get("groups")) for n in g.mvm_nodes()] == [("stem.0", 1), ("dw", 8), ("c1", 1), ("fc", None)]


@pytest.mark.parametrize("key", ["cnn", "mlp"])
def test_workload_is_extract_workloads(key):
    model, x = MODELS[key]
    assert capture(model, x).workload(x) == extract_workload_io(model, x)


def test_mvm_names_and_geometry():
    model, x = MODELS["cnn"]
    g = capture(model, x)
    assert [(n.name, n.op) for n in g.mvm_nodes()] == [("0", "conv"), ("3", "conv"), ("7", "linear")]
    assert g.host_ops() == {"relu": 16 * 64 + 32 * 16, "maxpool": 16 * 64 + 32 * 16}
    assert g.values[g.inputs[0]] == (1, 1, 8, 8)


def test_attention_is_recognised():
    model, x = MODELS["transformer"]
    g = capture(model, x)
    work = {w.name: w for w in g.workload()}
    t, d, h = 6, 16, 2
    assert list(work) == ["attn.in_proj", "attn.qk", "attn.av", "attn.out_proj", "ff.0", "ff.2", "head"]
    qk, av = work["attn.qk"], work["attn.av"]
    # the transformer_block_workload conventions: per head a d_head x T (keys) and T x d_head (values) matrix
    assert (qk.in_features, qk.out_features, qk.groups, qk.n_mvm, qk.stationary) == (d // h, t, h, t * h, False)
    assert (av.in_features, av.out_features, av.groups, av.n_mvm, av.stationary) == (t, d // h, h, t * h, False)
    assert g.node("attn.qk").attrs["scale"] == pytest.approx((d // h) ** -0.5)
    assert g.host_ops()["softmax"] == h * t * t
    assert work["attn.in_proj"].stationary and work["attn.in_proj"].n_mvm == t


def test_attention_with_weights_path_matches():
    model = TinyTransformer(need_weights=True).eval()  # bmm + softmax instead of SDPA
    x = torch.randn(2, 4, 16)
    g = capture(model, x)
    assert {"attn.qk", "attn.av"} <= {n.name for n in g.mvm_nodes()}
    torch.testing.assert_close(g.to_module()(x), model(x), rtol=1e-5, atol=1e-5)


def test_to_module_exposes_real_layers():
    model, x = MODELS["transformer"]
    mod = capture(model, x).to_module()
    assert isinstance(mod.get_submodule("attn.in_proj"), nn.Linear)
    assert isinstance(mod.get_submodule("head"), nn.Linear)
    cnn = capture(*MODELS["cnn"]).to_module()
    assert isinstance(cnn.get_submodule("3"), nn.Conv2d)


def test_fingerprint_sees_a_weight_change():
    model, x = MODELS["mlp"]
    g = capture(model, x)
    other = nn.Sequential(*[m for m in model]).eval()
    other = __import__("copy").deepcopy(other)
    with torch.no_grad():
        other[4].weight[0, 0] += 1e-3
    g2 = capture(other, x)
    assert g.signature() == g2.signature() and g.fingerprint() != g2.fingerprint()


def test_to_module_on_the_ideal_chip_equals_the_model():
    import aimc
    for key in ("cnn", "transformer"):
        model, x = MODELS[key]
        analog = aimc.convert(capture(model, x).to_module(), "ideal")
        aimc.program(analog, seed=0)
        with torch.no_grad():
            torch.testing.assert_close(analog(x), model(x), rtol=1e-5, atol=1e-5)


def test_parameter_matmul_and_constant_masks():
    class Custom(nn.Module):  # x @ W.t() + b with a buffer mask: a linear and a constant
        def __init__(self):
            super().__init__()
            self.proj = nn.Parameter(torch.randn(6, 4))
            self.register_buffer("mask", torch.ones(6))

        def forward(self, x):
            return torch.relu(x @ self.proj.t() * torch.ones_like(self.mask))

    model, x = Custom(), torch.randn(3, 4)
    g = capture(model, x)
    assert [(n.name, n.op) for n in g.mvm_nodes()] == [("proj", "linear")]
    torch.testing.assert_close(g.to_module()(x), model(x))
