"""N chips in one batched pass (aimc.nn.montecarlo, aimc.tiles.multichip) against one chip.

* programming: chip c of a ChipBatch holds exactly the conductances, drift exponents and
  digital scales of ``aimc.program(model, seeds[c])`` (same random streams);
* without read and output noise the batched read of chip c equals the single chip's read
  (drift, IR drop, DAC/ADC, GDC) up to float summation order: an ADC code may round the
  other way, so outputs agree to one ADC step of the column's digital scale;
* with noise, the spread over chips of an output (programming + read noise) matches the
  single-chip path's: a ratio of two sample variances of n = 64 chips lies inside the
  F(63, 63) 0.1 % / 99.9 % quantiles (0.46, 2.19) with probability 0.998.
"""
import pytest
import torch
from torch import nn

import aimc
from aimc.nn.montecarlo import ChipBatch
from aimc.tiles import encode, program_tiles
from aimc.tiles.crossbar import mvm, read_matrices
from aimc.tiles.multichip import chips_read_matrices, mvm_chips, stack_tiles

SEEDS = [3, 11, 42]


def cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(6 * 4 * 4, 300), nn.ReLU(), nn.Linear(300, 5))  # 300 > 256 rows: two input tiles


def quiet(name="pcm-hermes"):
    spec = aimc.chips.load(name)
    return spec.replace(noise=spec.noise.replace(read_noise=False, out_noise=0.0))


def test_chip_c_has_the_conductances_of_program_with_its_seed():
    analog = aimc.convert(cnn(), "pcm-hermes")
    chips = ChipBatch(analog, SEEDS)
    for c, seed in enumerate(SEEDS):
        aimc.program(analog, seed=seed)
        layers = [m for _, m in aimc.nn.analog_layers(analog)]
        for lc, layer in zip(chips.layers, layers):
            assert torch.equal(lc.tiles.state.g_uS[:, :, c], layer.g_uS)
            assert torch.equal(lc.tiles.state.drift[:, :, c], layer.drift_state)
            assert torch.equal(lc.tiles.scale, layer.out_scale)


@pytest.mark.parametrize("t_s", [0.0, 86400.0])
def test_noise_free_batched_read_equals_single_chip(t_s):
    spec = quiet()
    analog = aimc.convert(cnn(), spec)
    x = torch.rand(5, 1, 6, 6)
    chips = ChipBatch(analog, SEEDS)
    chips.drift(t_s)
    chips.compensate()
    y = chips(x)
    assert y.shape == (len(SEEDS), 5, 5)
    lsb = spec.adc.bound / (2 ** (spec.adc.bits - 1) - 1)
    for c, seed in enumerate(SEEDS):
        aimc.program(analog, seed=seed)
        aimc.drift(analog, t_s)
        aimc.compensate(analog)
        layers = [m for _, m in aimc.nn.analog_layers(analog)]
        for lc, layer in zip(chips.layers, layers):
            assert torch.allclose(lc.gdc[c], layer.gdc, rtol=1e-5)
        with torch.no_grad():
            ref = analog(x)
        scale = float(layers[-1].out_scale.max()) * lsb * float(x.abs().max())  # a few ADC steps downstream
        assert torch.allclose(y[c], ref, atol=4 * scale, rtol=1e-4), (y[c] - ref).abs().max()
    assert not torch.equal(y[0], y[1])  # different chips


def test_tile_read_of_chip_c_equals_its_single_read_exactly_for_one_tile():
    chip = quiet()
    w = torch.randn(7, 20, generator=torch.Generator().manual_seed(0))
    enc = encode(w, chip)
    tiles = [program_tiles(enc, chip, torch.Generator().manual_seed(s)) for s in SEEDS]
    cr = chips_read_matrices(stack_tiles(tiles), chip, 3600.0)
    x = torch.randn(4, 20, generator=torch.Generator().manual_seed(1))
    y = mvm_chips(x.repeat(len(SEEDS), 1), cr, chip).view(len(SEEDS), 4, 7)
    for c, t in enumerate(tiles):
        ref = mvm(x, read_matrices(t, chip, 3600.0), chip)
        lsb = chip.adc.bound / (2 ** (chip.adc.bits - 1) - 1) * float(t.scale.max()) * float(x.abs().max())
        assert torch.allclose(y[c], ref, atol=1.01 * lsb, rtol=0)
        assert (y[c] == ref).float().mean() > 0.9  # most outputs bit-identical


def test_spread_over_chips_matches_the_single_chip_path():
    torch.manual_seed(0)
    net = aimc.convert(nn.Linear(32, 4), "pcm-hermes")
    x = torch.randn(1, 32, generator=torch.Generator().manual_seed(2))
    seeds = list(range(64))
    chips = ChipBatch(net, seeds)
    chips.drift(86400.0)
    yb = chips(x)[:, 0]  # (64, 4)
    ys = []
    for s in range(100, 164):  # other seeds: independent samples
        aimc.program(net, seed=s)
        aimc.drift(net, 86400.0)
        with torch.no_grad():
            ys.append(net(x)[0])
    ys = torch.stack(ys)
    ratio = yb.var(dim=0) / ys.var(dim=0)
    assert ((ratio > 0.46) & (ratio < 2.19)).all(), ratio
    se = torch.sqrt(yb.var(dim=0) / 64 + ys.var(dim=0) / 64)
    assert ((yb.mean(dim=0) - ys.mean(dim=0)).abs() < 4 * se).all()


def test_errors_name_the_problem():
    net = aimc.convert(nn.Linear(4, 2), "pcm-hermes")
    with pytest.raises(ValueError, match="at least one seed"):
        ChipBatch(net, [])
    with pytest.raises(ValueError, match="no analog layers"):
        ChipBatch(nn.Linear(4, 2), [0])
    chip = quiet()
    tiles = [program_tiles(encode(torch.ones(2, 4), chip), chip, torch.Generator().manual_seed(s)) for s in (0, 1)]
    cr = chips_read_matrices(stack_tiles(tiles), chip, 0.0)
    with pytest.raises(ValueError, match="do not split into 2 chips"):
        mvm_chips(torch.ones(3, 4), cr, chip)
    with pytest.raises(ValueError, match="NaN"):
        mvm_chips(torch.full((2, 4), float("nan")), cr, chip)
    with pytest.raises(ValueError, match="other weights"):
        stack_tiles([tiles[0], program_tiles(encode(2 * torch.eye(2, 4), chip), chip, torch.Generator())])
