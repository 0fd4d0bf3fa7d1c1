"""N chips in one batched pass (aimc.nn.montecarlo, aimc.tiles.multichip) against one chip.

* programming: chip c of a ChipBatch holds exactly the conductances, drift exponents and
  digital scales of ``aimc.program(model, seeds[c])`` (same random streams);
* without read and output noise the batched read of chip c equals the single chip's read
  (drift, IR drop, DAC/ADC, GDC) up to float summation order: an ADC code may round the
  other way, so outputs agree to one ADC step of the column's digital scale (the chips'
  effective weights in float32, as the single chip's: ``float32_weights``). On a noisy chip
  a chip batch keeps them in bfloat16 by default (``lean_w_dtype``); its read differs from a
  float32 read of the same devices only by the weights' rounding, at most 2^-9 of each
  product, and float summation order (tested against that bound);
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
from aimc.tiles.crossbar import mvm
from aimc.tiles.matrices import read_matrices
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
    chips = ChipBatch(analog, SEEDS, float32_weights=True)
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


@pytest.mark.parametrize("conv", [False, True])
def test_spread_over_chips_matches_the_single_chip_path(conv):
    """The chip batch (bfloat16 weights, the chips' kernels) against separately programmed
    single chips (float32 weights), a linear layer and the CNN (its convolutions)."""
    torch.manual_seed(0)
    net = aimc.convert(cnn() if conv else nn.Linear(32, 4), "pcm-hermes")
    x = torch.rand(1, 1, 6, 6, generator=torch.Generator().manual_seed(2)) if conv else \
        torch.randn(1, 32, generator=torch.Generator().manual_seed(2))
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


def _unquantised():
    """HERMES without read/output noise and without ADC rounding (8-bit DAC codes kept): a
    read is then a plain sum of products, so its float error can be bounded."""
    spec = quiet()
    return spec.replace(adc=spec.adc.replace(bits=None))


@pytest.mark.parametrize("conv", [False, True])
def test_bfloat16_chip_read_equals_the_float32_read_within_the_weights_rounding(conv):
    """The chips' read with bfloat16 effective weights (lean_w_dtype: what ChipBatch uses
    on a noisy chip) against the same chips' float32 read. Each product c*w changes by at
    most |c*w| 2^-9 (bfloat16 keeps 8 significant bits: relative rounding <= 2^-9) and the
    float32 sums of n terms add at most n 2^-24 sum|c*w| each, so per output
    |y_bf16 - y_f32| <= (2^-9 + 2n 2^-24) * sum_k |c_k w_k| * post (the digital scale),
    with sum_k |c_k w_k| computed from |codes| @ |w|. The bound is tight enough to fail
    on a real error (one wrong weight or code moves an output by a whole product)."""
    from aimc.nn.chipstate import lean_w_dtype
    from aimc.physics.periphery import dac_codes
    from aimc.tiles.conv import ConvGeometry, im2col
    from aimc.tiles.multichip import conv_mvm_chips
    chip = _unquantised()
    assert lean_w_dtype(chip) == torch.bfloat16
    gen = torch.Generator().manual_seed(0)
    if conv:
        layer = nn.Conv2d(5, 12, 3, padding=1)
        w = layer.weight.detach().reshape(12, -1)
        x = torch.randn(len(SEEDS) * 2, 5, 6, 6, generator=gen)
    else:
        w = torch.randn(9, 40, generator=gen)
        x = torch.randn(len(SEEDS) * 4, 40, generator=gen)
    enc = encode(w, chip)
    stacked = stack_tiles([program_tiles(enc, chip, torch.Generator().manual_seed(s)) for s in SEEDS])
    reads = {}
    for dt in (torch.bfloat16, None):
        cr = chips_read_matrices(stacked, chip, 3600.0, dt)
        if conv:
            geo = ConvGeometry.of(layer)
            reads[dt] = conv_mvm_chips(x, cr, chip, geo).movedim(1, -1).reshape(-1, 12)
        else:
            reads[dt] = mvm_chips(x, cr, chip)
    cr32 = chips_read_matrices(stacked, chip, 3600.0)
    assert cr32.full.w.dtype == torch.float32 and chips_read_matrices(stacked, chip, 0.0, torch.bfloat16).full.w.dtype \
        == torch.bfloat16
    rows = im2col(x, ConvGeometry.of(layer)) if conv else x  # (C*P, in): each chip's input vectors
    codes = dac_codes(rows / rows.abs().amax(dim=1, keepdim=True), chip.dac.bits)  # abs-max noise management
    C, n = len(SEEDS), codes.shape[1]
    w_abs = cr32.full.w.abs()[:, 0, :n]  # (C, in, N): one input tile
    mag = torch.bmm(codes.abs().view(C, -1, n), w_abs).reshape(-1, w_abs.shape[-1])
    post = cr32.rm.post.reshape(-1) * rows.abs().amax(dim=1, keepdim=True)
    bound = (2.0**-9 + 2 * n * 2.0**-24) * mag * post
    diff = (reads[torch.bfloat16] - reads[None]).abs()
    assert (diff <= bound).all(), (diff / bound).max()
    assert diff.max() > 0  # the bfloat16 weights were really used


@pytest.mark.parametrize("var", [False, True])
def test_bfloat16_weights_take_exact_bfloat16_dot_products_in_the_conv_kernels(var):
    """bfloat16 weights with 8-bit DAC codes (integers, exact in bfloat16): the partial sums
    taken two rows per bfloat16 dot product equal the float32 kernel's on the same weight
    values bit for bit where every sum is exact (weights multiples of 2^-6 in [-1, 1],
    codes |c| <= 127, 45 rows: every partial sum is a multiple of 2^-6 below 2^13, exact in
    float32 in any order), and the chips' kernel equals the single-chip kernel bit for bit."""
    from aimc import cpp
    if cpp.load() is None:
        pytest.skip("the compiled kernels are unavailable (AIMC_NO_CPP or no compiler)")
    C, B, Cin = 3, 2, 5
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(C * B, Cin, 6, 7, generator=gen)
    w = (torch.randint(-64, 65, (C, 1, Cin * 9, 10), generator=gen) / 64.0).bfloat16()
    vw = torch.rand(C, 1, Cin * 9, 10, generator=gen).bfloat16() if var else None
    args = ([3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 127, 0.0)
    y16, v16, s16 = cpp.load().conv_patch_read_chips(x, w, vw, *args)
    y32, v32, s32 = cpp.load().conv_patch_read_chips(x, w.float(), vw, *args)
    assert torch.equal(y16, y32) and torch.equal(s16, s32)
    if var:
        assert torch.equal(v16, v32)
    P = y16.shape[1] // C
    for c in range(C):
        yc, vc, _ = cpp.load().conv_patch_read(x[c * B:(c + 1) * B], w[c], None if vw is None else vw[c], *args)
        assert torch.equal(y16[:, c * P:(c + 1) * P], yc)
        if var:
            assert torch.equal(v16[:, c * P:(c + 1) * P], vc)


def test_same_seeds_give_the_same_chips_at_one_and_two_threads():
    """Chip c's outputs and accuracy depend on the seeds only, not on the thread count: the
    compiled reads split work by (chip, segment) and draw noise by linear index."""
    from aimc.sweep.montecarlo import chip_accuracies
    analog = aimc.convert(cnn(), "pcm-hermes")
    gen = torch.Generator().manual_seed(4)
    x, y = torch.rand(40, 1, 6, 6, generator=gen), torch.randint(0, 5, (40,), generator=gen)
    old, outs, accs = torch.get_num_threads(), [], []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            chips = ChipBatch(analog, SEEDS)
            chips.drift(86400.0)
            chips.compensate()
            outs.append(chips(x))
            accs.append(chip_accuracies(analog, x, y, range(5), 86400.0, chips_per_pass=3, batch_size=16))
    finally:
        torch.set_num_threads(old)
    assert torch.equal(outs[0], outs[1]) and torch.equal(accs[0], accs[1])
