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


def bound_managed():
    """Noise-free HERMES with a low ADC bound and bound management: outputs saturate and
    are re-read (per chip, by the single-chip bound management)."""
    spec = quiet()
    return spec.replace(adc=spec.adc.replace(bound=2.0, bound_management=True))


@pytest.mark.parametrize("t_s,make", [(0.0, quiet), (86400.0, quiet), (86400.0, bound_managed)])
def test_noise_free_batched_read_equals_single_chip(t_s, make):
    spec = make()
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


@pytest.mark.parametrize("kernel,stride,pads,dil,scale", [
    ((3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 0.0),      # padded, dynamic full scale (patch abs-max)
    ((3, 2), (2, 1), (0, 2, 1, 0), (1, 2), 0.0),      # strides, dilation, uneven padding
    ((1, 5), (1, 2), (0, 0, 2, 2), (1, 1), 1.5),      # 1-d as height 1, fixed full scale
])
@pytest.mark.parametrize("var_dtype", [None, torch.float32, torch.bfloat16])
def test_chips_patch_read_equals_the_single_chip_patch_read_exactly(kernel, stride, pads, dil, scale, var_dtype):
    """Each chip's partial sums, variances and scales from the chips' patch read are those
    of the single-chip patch read bit for bit (same codes, same per-lane sums)."""
    from aimc import cpp
    if cpp.load() is None:
        pytest.skip("the compiled kernels are unavailable (AIMC_NO_CPP or no compiler)")
    C, B, Cin, H, W, T, R, N = 3, 2, 3, 5, 9, 2, 16, 11
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(C * B, Cin, H, W, generator=gen)
    x[1, :, :2] = 0.0  # some all-zero patches: scale 1
    I = Cin * kernel[0] * kernel[1]
    T = -(-I // R)
    w = torch.randn(C, T, R, N, generator=gen)
    vw = None if var_dtype is None else torch.rand(C, T, R, N, generator=gen).to(var_dtype)
    args = (list(kernel), list(stride), list(pads), list(dil), 127, scale)
    y, var, s = cpp.load().conv_patch_read_chips(x, w, vw, *args)
    P = y.shape[1] // C
    for c in range(C):
        yc, vc, sc = cpp.load().conv_patch_read(x[c * B:(c + 1) * B], w[c], None if vw is None else vw[c], *args)
        assert torch.equal(y[:, c * P:(c + 1) * P], yc)
        assert torch.equal(s[c * P:(c + 1) * P], sc)
        if vw is not None:
            assert torch.equal(var[:, c * P:(c + 1) * P], vc)


@pytest.mark.parametrize("name", ["pcm-hermes", "pcm", "rram", "ecram", "sram", "ideal"])
def test_program_chips_is_program_with_each_chips_generator(name):
    """Every device model's batched programming equals programming each chip with its
    own generator, bit for bit (PCM computes the target statistics once)."""
    from aimc.physics.devices import DEVICES
    dev = DEVICES.get(name)()
    g = torch.rand(2, 3, 5, generator=torch.Generator().manual_seed(0)) * dev.g_max_uS
    st = dev.program_chips(g, [torch.Generator().manual_seed(s) for s in SEEDS])
    for c, s in enumerate(SEEDS):
        ref = dev.program(g, torch.Generator().manual_seed(s))
        assert torch.equal(st.g_uS[c], ref.g_uS) and torch.equal(st.drift[c], ref.drift)


@pytest.mark.parametrize("bm", [False, True])
def test_fused_chips_conv_read_equals_patch_read_then_finish_read(bm):
    """The chips' convolution in one compiled pass (conv_read_chips: partial sums in
    scratch, then noise, ADC, gains and bias) gives the numbers of the patch read followed by
    finish_read bit for bit: the same codes, sums, noise draws (same seed, same linear
    indices) and the same rounding of every step; with bound management the saturated
    pixels it reports are the same."""
    from aimc import cpp
    from aimc.tiles.conv import ConvGeometry
    from aimc.tiles.crossbar import finish_read
    from aimc.tiles.multichip import conv_mvm_chips
    if cpp.load() is None:
        pytest.skip("the compiled kernels are unavailable (AIMC_NO_CPP or no compiler)")
    chip = aimc.chips.load("pcm-hermes")
    if bm:
        chip = chip.replace(adc=chip.adc.replace(bound=3.0, bound_management=True, bm_max_iter=0))
    conv = nn.Conv2d(3, 12, 3, padding=1)
    w = conv.weight.detach().reshape(12, -1)
    enc = encode(w, chip)
    tiles = [program_tiles(enc, chip, torch.Generator().manual_seed(s)) for s in SEEDS]
    cr = chips_read_matrices(stack_tiles(tiles), chip, 86400.0)
    geo = ConvGeometry.of(conv)
    C, B = len(SEEDS), 2
    x = torch.rand(C * B, 3, 5, 7, generator=torch.Generator().manual_seed(3))
    gain, bias, scale = torch.tensor([1.1, 0.9, 1.3]), torch.randn(12), torch.rand(12) + 0.5
    y = conv_mvm_chips(x, cr, chip, geo, torch.Generator().manual_seed(9), gain=gain, out_scale=scale, bias=bias)
    gen = torch.Generator().manual_seed(9)
    yp, var, s = cpp.load().conv_patch_read_chips(x, cr.full.w, cr.full.var, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1],
                                                  127, 0.0)
    L = 5 * 7
    ref, sat = finish_read(yp, var, cr.rm, chip, gen, s * gain.repeat_interleave(B * L), scale, bias)
    assert torch.equal(y.movedim(1, -1).reshape(C * B * L, 12), ref)
    if bm:  # the saturation the fused pass reports (seed as finish_read draws it)
        seed = int(torch.randint(0, 2**62, (1,), generator=torch.Generator().manual_seed(9)))
        out, sat_f, s_f = cpp.load().conv_read_chips(
            x, cr.full.w, cr.full.var, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 127, 0.0, cr.rm.post, cr.rm.out_var,
            cr.rm.code_max, seed, gain, scale, bias, torch.empty(C * B * L, 12))
        assert torch.equal(out, ref) and torch.equal(s_f, s) and sat is not None and torch.equal(sat_f, sat)
        assert bool(sat.any()) and not bool(sat.all())
