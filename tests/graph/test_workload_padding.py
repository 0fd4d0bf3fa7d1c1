"""extract_workload on convolutions padded with ``padding="same"``/``"valid"`` (mypy found
that the im2col statistics passed the string to ``unfold``, which raised a TypeError)."""
import pytest
import torch
from torch import nn

from aimc.graph.workload import _im2col, extract_workload


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's note on a copy
@pytest.mark.parametrize("padding, kernel, dilation", [("same", 3, 1), ("same", 4, 1), ("same", 3, 2),
                                                       ("valid", 3, 1)])
def test_string_padding_matches_the_convolution(padding, kernel, dilation):
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 5, kernel, padding=padding, dilation=dilation, bias=False)
    x = torch.randn(3, 2, 9, 9)
    cols = _im2col(conv, x)  # (B, K, positions)
    y = (conv.weight.reshape(5, -1) @ cols).reshape(3, 5, *conv(x).shape[2:])
    torch.testing.assert_close(y, conv(x), rtol=1e-5, atol=1e-5)  # the same windows as the conv


def test_extract_workload_accepts_same_padding():
    net = nn.Sequential(nn.Conv2d(1, 4, 4, padding="same"), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    conv, fc = extract_workload(net, torch.randn(2, 1, 8, 8))
    assert (conv.kind, conv.in_features, conv.out_features, conv.n_mvm) == ("conv", 16, 4, 64)
    assert (fc.in_features, fc.out_features) == (256, 10)
