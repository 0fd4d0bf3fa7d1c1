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


class ResBlock(nn.Module):
    """Conv + eval-mode batch norm (folded by the exporters), a depthwise conv on a residual
    path, global average pooling, a 1-d conv and a softmax head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.dw, self.bn = nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8)
        self.pool, self.c1, self.fc = nn.AdaptiveAvgPool2d(1), nn.Conv1d(8, 4, 1), nn.Linear(4, 5)
        for bn in (self.stem[1], self.bn):  # non-trivial running statistics
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x):  # (B, 3, H, W)
        h = self.stem(x)
        h = torch.relu(h + self.bn(self.dw(h)))
        h = self.c1(self.pool(h).flatten(2)).squeeze(-1)  # (B, 4)
        return torch.softmax(self.fc(h), dim=-1)


class TextClassifier(nn.Module):
    """Token ids -> nn.Embedding -> an encoder layer -> mean over tokens -> a linear head."""

    def __init__(self, vocab: int = 50, d: int = 16):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.enc = nn.TransformerEncoderLayer(d, 2, 2 * d, dropout=0.0, batch_first=True)
        self.head = nn.Linear(d, 3)

    def forward(self, ids):  # (B, T) integers
        return self.head(self.enc(self.emb(ids)).mean(dim=1))


def _models():
    torch.manual_seed(0)
    return {
        "cnn": (digits_cnn(seed=0).eval(), torch.randn(4, 1, 8, 8)),
        "mlp": (nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 32, bias=False), nn.Tanh(),
                              nn.Linear(32, 5)).eval(), torch.randn(4, 20)),
        "transformer": (TinyTransformer().eval(), torch.randn(3, 6, 16)),
        "resblock": (ResBlock().eval(), torch.randn(4, 3, 8, 8)),
        "text": (TextClassifier().eval(), torch.randint(0, 50, (3, 7))),
        # two identical layers (deep copies): the ONNX exporter stores their tensors once
        "encoder": (nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True), 2,
                                          enable_nested_tensor=False).eval(), torch.randn(3, 5, 16)),
    }


MODELS = _models()


def export_onnx(model, x, path, **kwargs):
    """torch.onnx.export with the dynamo exporter (offline, deterministic), batch 1."""
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    kwargs.setdefault("dynamo", True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x[:1],), str(path), verbose=False, **kwargs)
    return path


@pytest.fixture(scope="session")
def onnx_files(tmp_path_factory):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    d = tmp_path_factory.mktemp("onnx")
    return {k: export_onnx(m, x, d / f"{k}.onnx") for k, (m, x) in MODELS.items()}
