"""TileLayout: the even split of a matrix's inputs over its input tiles."""
import torch

from aimc.tiles.layout import TileLayout


def test_inputs_split_evenly_over_the_tiles_of_a_fill_split():
    """For every input size on tiles of 1..300 rows: the same input tiles as filling each
    tile in turn, no tile over its rows, fewer than t_in padding rows in all."""
    for rows in (1, 2, 3, 7, 64, 256, 300):
        for k in range(1, 1200):
            lay = TileLayout(k, 5, rows, 8, 1)
            ru = lay.rows_used
            assert lay.t_in == -(-k // rows) and ru <= rows
            assert -(-k // ru) == lay.t_in  # no input tile left empty
            assert 0 <= lay.pad_in < lay.t_in
            assert (lay.t_in - 1) * ru < k  # the last tile holds at least one input


def test_split_in_and_used_rows_agree():
    lay = TileLayout(576, 10, 256, 256, 1)  # SmolLM2's width on HERMES-sized tiles
    assert (lay.t_in, lay.rows_used, lay.pad_in) == (3, 192, 0)
    x = torch.arange(577.0)[1:].view(1, 576)
    t = lay.split_in(x)  # (T, 1, rows_used)
    assert t.shape == (3, 1, 192) and torch.equal(t.flatten(), x.flatten())
    lay = TileLayout(301, 10, 256, 256, 1)
    used = lay.used_rows()
    assert used.shape == (2, 151) and int(used.sum()) == 301 and not bool(used[1, 150])
    t = lay.split_in(torch.ones(2, 301))
    assert t.shape == (2, 2, 151) and float(t[1, :, 150].abs().sum()) == 0.0
    assert lay.utilisation == 301 * 10 / (2 * 256 * 256)  # of the physical tiles
