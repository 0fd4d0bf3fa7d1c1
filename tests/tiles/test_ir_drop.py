"""IR drop inside tiled layers: exact nodal solve vs the first-order hot-path model."""
import torch
from torch import nn

import aimc
from aimc.chips import IRDropConfig
from aimc.physics.pcm import PCM


def _layer(mode, r, rows=64):
    chip = aimc.chips.load("ideal").replace(rows=rows, cols=rows, device=PCM(prog_noise_scale=0.0, drift_scale=0.0,
                                                                          read_noise_scale=0.0),
                                            ir_drop=IRDropConfig(mode=mode, r_wire_ohm=r))
    torch.manual_seed(3)
    lin = nn.Linear(150, 90, bias=False)  # 3 x 2 tiles of 64 x 64
    a = aimc.convert(lin, chip)
    aimc.program(a, seed=0)
    return lin, a


def test_first_order_tracks_exact_and_both_lower_the_currents():
    x = torch.rand(32, 150)  # non-negative inputs: every cell drives current the same way
    lin, ideal = _layer("none", 0.0)
    _, first = _layer("first_order", 2.0)
    _, exact = _layer("exact", 2.0)
    with torch.no_grad():
        y0, y1, y2 = ideal(x), first(x), exact(x)
    drop = (y2 - y0).norm() / y0.norm()
    approx_err = (y1 - y2).norm() / y0.norm()
    assert torch.allclose(y0, lin(x), atol=1e-4)
    assert drop > 0.01  # the IR drop is visible at 2 ohm per segment, 64 x 64, g <= 25 uS
    assert approx_err < 0.1 * drop  # the first-order model captures > 90 % of it
    # where they differ: the matrices differ most far from driver (column 0) and sink (last row)
    d = (first._read_matrices().w - exact._read_matrices().w).abs()  # (tiles_in, rows, out)
    t, i, j = (int(v) for v in torch.unravel_index(d.argmax(), d.shape))
    assert i < 32 and j % 64 >= 32, (t, i, j)
