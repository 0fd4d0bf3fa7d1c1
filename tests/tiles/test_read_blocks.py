"""The tile physics runs in blocks of whole tiles (issue 12: programming and drift of a
135 M-parameter model): the blocks must not change a read matrix."""
import torch

from aimc.chips import load
from aimc.tiles import crossbar
from aimc.tiles.crossbar import encode, program_tiles
from aimc.tiles.matrices import read_matrices


def test_read_matrices_in_blocks_equal_one_pass(monkeypatch):
    chip = load("pcm-hermes")  # drift, read noise, first-order IR drop (couples a tile's cells)
    w = torch.randn(70, 300, generator=torch.Generator().manual_seed(0))
    small = chip.model_copy(update={"rows": 64, "cols": 16})  # 5 x 5 tiles
    tiles = program_tiles(encode(w, small), small, torch.Generator().manual_seed(1))
    whole = read_matrices(tiles, small, 86400.0)
    monkeypatch.setattr(crossbar, "BLOCK_DEVICES", 2 * 5 * 64 * 16)  # one output tile per block
    blocks = read_matrices(tiles, small, 86400.0)
    assert torch.equal(blocks.w, whole.w) and torch.equal(blocks.var, whole.var) and torch.equal(blocks.post, whole.post)


def test_programming_in_blocks_is_seeded_and_has_the_device_statistics(monkeypatch):
    chip = load("pcm-hermes")
    enc = encode(torch.ones(64, 256), chip)  # every weight at full scale: one target, g_max
    monkeypatch.setattr(crossbar, "BLOCK_DEVICES", 1000)  # 32,768 devices in 33 blocks
    a = program_tiles(enc, chip, torch.Generator().manual_seed(3))
    b = program_tiles(enc, chip, torch.Generator().manual_seed(3))
    assert torch.equal(a.state.g_uS, b.state.g_uS) and torch.equal(a.state.drift, b.state.drift)
    g = a.state.g_uS[:, 0].flatten().double()  # 16,384 devices programmed to g_max
    sd = float(chip.device.prog_noise_std_uS(torch.tensor(chip.device.g_max_uS)))
    n = g.numel()
    assert abs(float(g.mean()) - chip.device.g_max_uS) < 4 * sd / n**0.5
    assert abs(float(g.std()) / sd - 1) < 4 / (2 * n) ** 0.5
