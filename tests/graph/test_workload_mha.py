"""``extract_workload`` lists ``nn.MultiheadAttention``'s projections (it reads its weights
inside ``F.multi_head_attention_forward``, so no Linear hook fires) under the names the
analog version gives them, so a digital and a converted model have the same workload."""
import torch
from torch import nn

import aimc
from aimc.graph import extract_workload


def _rows(work):
    return [(w.name, w.in_features, w.out_features, w.n_mvm) for w in work]


def test_digital_mha_projections_are_listed_like_the_analog_ones():
    torch.manual_seed(0)
    enc = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
    x = torch.randn(3, 7, 32)
    digital = _rows(extract_workload(enc, x))
    assert digital == [("self_attn.q_proj", 32, 32, 7), ("self_attn.k_proj", 32, 32, 7), ("self_attn.v_proj", 32, 32, 7),
                       ("self_attn.out_proj", 32, 32, 7), ("linear1", 32, 64, 7), ("linear2", 64, 32, 7)]
    assert _rows(extract_workload(aimc.convert(enc, "ideal"), x)) == digital


def test_cross_attention_with_other_key_dims_and_keyword_inputs():
    mha = nn.MultiheadAttention(16, 2, kdim=8, vdim=4, batch_first=True)

    class Cross(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = mha

        def forward(self, q):
            k = torch.ones(q.shape[0], 5, 8)
            return self.attn(q, key=k, value=torch.ones(q.shape[0], 5, 4))[0]

    rows = _rows(extract_workload(Cross(), torch.randn(2, 3, 16)))
    assert rows == [("attn.q_proj", 16, 16, 3), ("attn.k_proj", 8, 16, 5), ("attn.v_proj", 4, 16, 5),
                    ("attn.out_proj", 16, 16, 3)]
