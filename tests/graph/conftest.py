"""Models captured in the graph tests, and their ONNX exports (made once per session)."""
import logging
import warnings

import pytest
import torch
from torch import nn

from aimc.workloads.models import digits_cnn


class TinyTransformer(nn.Module):
    """An encoder block built from nn.MultiheadAttention, mean-pooled into a classifier."""

    def __init__(self, d: int = 16, heads: int = 2, need_weights: bool = False):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.head = nn.Linear(d, 3)
        self.need_weights = need_weights

    def forward(self, x):  # (B, T, d)
        a, _ = self.attn(x, x, x, need_weights=self.need_weights)
        x = self.norm1(x + a)
        x = self.norm2(x + self.ff(x))
        return self.head(x.mean(dim=1))


def _models():
    torch.manual_seed(0)
    return {
        "cnn": (digits_cnn(seed=0).eval(), torch.randn(4, 1, 8, 8)),
        "mlp": (nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 32, bias=False), nn.Tanh(),
                              nn.Linear(32, 5)).eval(), torch.randn(4, 20)),
        "transformer": (TinyTransformer().eval(), torch.randn(3, 6, 16)),
        "encoder_layer": (nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True).eval(),
                          torch.randn(3, 5, 16)),
    }


MODELS = _models()


def export_onnx(model, x, path):
    """torch.onnx.export with the dynamo exporter (offline, deterministic), batch 1."""
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x[:1],), str(path), dynamo=True, verbose=False)
    return path


@pytest.fixture(scope="session")
def onnx_files(tmp_path_factory):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    d = tmp_path_factory.mktemp("onnx")
    return {k: export_onnx(m, x, d / f"{k}.onnx") for k, (m, x) in MODELS.items()}
