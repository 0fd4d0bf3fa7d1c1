"""The convolution read (tiles.conv): oracle against the im2col read of the same tiles
(noise off: equal to float rounding; noise on: the same per-output statistics), the
ideal limit (= torch's convolution), determinism and bad input."""
import math

import pytest
import torch
import torch.nn.functional as F

import aimc
from aimc.chips import ADCConfig, DACConfig, MappingConfig, NoiseConfig
from aimc.tiles import encode, program_tiles, read_matrices
from aimc.tiles import fused
from aimc.tiles.conv import ConvGeometry, conv_mvm, conv_out_shape, im2col

pytestmark = pytest.mark.skipif(not fused.available(), reason="compiled kernels not available")

HERMES = aimc.chips.load("pcm-hermes")
QUIET = HERMES.replace(noise=NoiseConfig(read_noise=False, out_noise=0.0))  # programmed, drifted, IR drop, ADC


def _setup(chip, c_in, c_out, kernel, seed=0, t_s=3600.0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(c_out, c_in, *kernel, generator=g)
    tiles = program_tiles(encode(w.flatten(1), chip), chip, torch.Generator().manual_seed(seed + 1))
    return w, read_matrices(tiles, chip, t_s)


def _geo(kernel, stride, dilation, padding, mode="zeros"):
    nd = len(kernel)
    pads = tuple(p for d in reversed(range(nd)) for p in (padding[d], padding[d]))
    return ConvGeometry(tuple(kernel), tuple(stride), tuple(dilation), pads, mode)


def _one_code_apart(a, b, rm, chip, amax):
    """|a - b| <= one ADC code of one tile, per output (float rounding of a partial sum
    may move it across a rounding boundary), and almost all outputs identical."""
    lsb = rm.post.abs().amax()  # the largest column's digital value of one code
    diff = (a - b).abs()
    limit = lsb * amax * 1.0001 + 1e-5 * b.abs().amax()
    assert (diff <= limit).all(), float(diff.max())
    assert (diff > 1e-5 * b.abs().amax()).float().mean() < 2e-3


CASES = [  # (c_in, c_out, spatial, kernel, stride, dilation, padding, rows)
    (3, 5, (9, 11), (3, 3), (1, 1), (1, 1), (1, 1), 256),     # one tile
    (3, 5, (9, 11), (3, 3), (1, 1), (1, 1), (1, 1), 7),       # 4 tiles, boundaries inside a channel's kernel
    (4, 6, (12, 10), (3, 2), (2, 1), (1, 2), (2, 0), 16),     # stride, dilation, uneven padding, 2 tiles
    (2, 3, (20, 20), (5, 5), (3, 2), (2, 1), (0, 3), 256),    # big stride; lanes beyond 16 output columns
    (2, 4, (33,), (5,), (1,), (1,), (2,), 4),                 # conv1d, 3 tiles
    (3, 7, (40,), (3,), (2,), (3,), (1,), 256),               # conv1d, stride and dilation
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dac", ["abs_max", "range", "none"])
def test_equals_im2col_read_with_noise_off(case, dac):
    c_in, c_out, sp, k, st, dl, pad, rows = case
    chip = QUIET.replace(rows=rows)
    if dac == "none":
        chip = chip.replace(dac=DACConfig(bits=8, noise_management="none", bound=1.5))
    w, rm = _setup(chip, c_in, c_out, k)
    geo = _geo(k, st, dl, pad)
    x = torch.randn(3, c_in, *sp, generator=torch.Generator().manual_seed(5))
    x[0] = x[0].relu()  # many zeros, like activations
    x[1, :, 0] = 0.0  # a patch of all zeros (scale 1)
    r = 1.2 if dac == "range" else None  # a static range: inputs beyond it clip
    a = conv_mvm(x, rm, chip, geo, input_range=r, method="fused")
    b = conv_mvm(x, rm, chip, geo, input_range=r, method="im2col")
    assert a.shape == b.shape == (3, c_out, *conv_out_shape(x, geo))
    amax = im2col(x, geo).abs().amax(dim=1) if dac == "abs_max" else torch.tensor(r or 1.5)
    amax = amax.view(3, *a.shape[2:], 1).movedim(-1, 1) if dac == "abs_max" else amax
    _one_code_apart(a, b, rm, chip, amax)
    assert (a - b).abs().max() < 1e-3 * b.abs().max() + 1e-6


@pytest.mark.parametrize("mode", ["reflect", "circular", "replicate"])
def test_padding_modes_equal_im2col(mode):
    w, rm = _setup(QUIET, 2, 3, (3, 3))
    geo = _geo((3, 3), (1, 1), (1, 1), (1, 1), mode)
    x = torch.randn(2, 2, 7, 6, generator=torch.Generator().manual_seed(1))
    a = conv_mvm(x, rm, QUIET, geo, method="fused")
    b = conv_mvm(x, rm, QUIET, geo, method="im2col")
    assert (a - b).abs().max() < 1e-3 * b.abs().max()


def test_exact_chip_equals_torch_convolution():
    ideal = aimc.chips.load("ideal").replace(rows=10)  # exact DAC and ADC, 3 tiles
    w, rm = _setup(ideal, 3, 4, (3, 3))
    geo = _geo((3, 3), (2, 1), (1, 2), (1, 2))
    x = torch.randn(2, 3, 9, 9, generator=torch.Generator().manual_seed(2))
    y = conv_mvm(x, rm, ideal, geo, method="fused")
    ref = F.conv2d(x, w, stride=(2, 1), dilation=(1, 2), padding=(1, 2))
    assert torch.allclose(y, ref, atol=1e-4, rtol=1e-4)


def test_saturation_and_bound_management_equal_im2col():
    adc = ADCConfig(bits=8, bound=0.7, bound_management=True, bm_max_iter=3)
    chip = QUIET.replace(rows=16, adc=adc)
    w, rm = _setup(chip, 3, 4, (3, 3))
    geo = _geo((3, 3), (1, 1), (1, 1), (1, 1))
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    a = conv_mvm(x, rm, chip, geo, method="fused")
    b = conv_mvm(x, rm, chip, geo, method="im2col")
    no_bm = conv_mvm(x, rm, chip.replace(adc=adc.model_copy(update={"bound_management": False})), geo, method="fused")
    assert (no_bm - b).abs().max() > 0.05 * b.abs().max()  # the ADC saturates and bound management acts
    assert (a - b).abs().max() < 1e-3 * b.abs().max()


def test_noise_statistics_equal_im2col_read():
    """Per output element, mean and variance over n reads (independent streams) agree with
    the im2col read's within 5 standard errors: mean difference sd * sqrt(2/n); variance
    ratio sqrt(2 (kurtosis - 1) / n) of the two sample variances, kurtosis estimated."""
    chip = HERMES.replace(rows=8)  # 3 tiles; read noise of drifted PCM, output noise, ADC
    w, rm = _setup(chip, 2, 3, (3, 3))
    geo = _geo((3, 3), (1, 1), (1, 1), (1, 1))
    n = 4000
    img = torch.randn(1, 2, 4, 4, generator=torch.Generator().manual_seed(4))
    x = img.expand(n, -1, -1, -1).contiguous()  # n reads of one image, each its own noise
    a = conv_mvm(x, rm, chip, geo, torch.Generator().manual_seed(10), method="fused").double()
    b = conv_mvm(x, rm, chip, geo, torch.Generator().manual_seed(11), method="im2col").double()
    ma, mb, va, vb = a.mean(0), b.mean(0), a.var(0), b.var(0)
    assert (va > 0).all() and (vb > 0).all()
    assert ((ma - mb).abs() <= 5 * ((va + vb) / n).sqrt()).all()
    kurt = ((b - mb) ** 4).mean(0) / vb**2
    rel_sd = (2 * (kurt - 1) / n).sqrt() * math.sqrt(2)  # sd of log(va / vb), approx.
    assert ((va / vb).log().abs() <= 5 * rel_sd).all()


def test_deterministic_for_a_seed_and_same_stream_as_im2col():
    chip = HERMES.replace(rows=16)
    w, rm = _setup(chip, 3, 4, (3, 3))
    geo = _geo((3, 3), (1, 1), (1, 1), (1, 1))
    x = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(6))
    run = lambda m: conv_mvm(x, rm, chip, geo, torch.Generator().manual_seed(7), method=m)  # noqa: E731
    a = run("fused")
    assert torch.equal(a, run("fused"))
    # the same noise draws as the im2col read; only the variances' rounding differs (bf16 there)
    b = run("im2col")
    assert (a - b).abs().max() < 0.1 * (a - conv_mvm(x, rm, chip, geo, torch.Generator().manual_seed(8),
                                                     method="fused")).abs().max()


def test_slices_equal_im2col():
    chip = aimc.chips.load("ideal").replace(rows=12, adc=ADCConfig(bits=8, bound=12.0, bound_management=False),
                                            mapping=MappingConfig(slices=2, slice_base=1.0))
    w, rm = _setup(chip, 3, 5, (3, 3))
    geo = _geo((3, 3), (1, 1), (1, 1), (0, 0))
    x = torch.randn(2, 3, 7, 7, generator=torch.Generator().manual_seed(9))
    a, b = (conv_mvm(x, rm, chip, geo, method=m) for m in ("fused", "im2col"))
    assert (a - b).abs().max() < 1e-3 * b.abs().max()


def test_bad_input_is_named():
    w, rm = _setup(QUIET, 3, 4, (3, 3))
    geo = _geo((3, 3), (1, 1), (1, 1), (0, 0))
    with pytest.raises(ValueError, match=r"layer1: input must be \(batch, 3"):
        conv_mvm(torch.randn(2, 4, 8, 8), rm, QUIET, geo, name="layer1")
    with pytest.raises(ValueError, match="smaller than the kernel"):
        conv_mvm(torch.randn(2, 3, 2, 8), rm, QUIET, geo)
    bad = torch.randn(2, 3, 8, 8)
    bad[1, 2, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        conv_mvm(bad, rm, QUIET, geo)
    with pytest.raises(ValueError, match="method"):
        conv_mvm(torch.randn(2, 3, 8, 8), rm, QUIET, geo, method="magic")
    with pytest.raises(ValueError, match="input_range"):
        conv_mvm(torch.randn(2, 3, 8, 8), rm, QUIET, geo, input_range=-1.0)
    with pytest.raises(ValueError, match="ConvGeometry"):
        ConvGeometry((3, 3), (1,), (1, 1), (0, 0, 0, 0))


def test_chunks_of_images_equal_one_read(monkeypatch):
    from aimc.tiles import conv

    chip = QUIET.replace(rows=16, adc=ADCConfig(bits=8, bound=0.7, bound_management=True, bm_max_iter=2))
    w, rm = _setup(chip, 3, 4, (3, 3))
    geo = _geo((3, 3), (1, 1), (1, 1), (1, 1))
    x = torch.randn(7, 3, 6, 5, generator=torch.Generator().manual_seed(12))
    whole = conv_mvm(x, rm, chip, geo, method="fused")
    monkeypatch.setattr(conv, "_CHUNK_ELEMENTS", 2 * 4 * 30 * 2)  # 2 tiles x 4 columns x 30 pixels: 2 images a chunk
    chunked = conv_mvm(x, rm, chip, geo, method="fused")
    assert torch.equal(whole, chunked)
    assert (chunked - conv_mvm(x, rm, chip, geo, method="im2col")).abs().max() < 1e-3 * whole.abs().max()


def test_short_rows_grouped_in_the_fused_pass_give_the_same_draws():
    """finish_read passes k short rows side by side (same linear indices): the noise draws,
    ADC and sums are those of the row-by-row pass."""
    from aimc.tiles.crossbar import finish_read

    w, rm = _setup(HERMES.replace(rows=8), 2, 3, (3, 3))  # 3 tiles, 3 columns
    T, N = rm.w.shape[0], rm.w.shape[2]
    g = torch.Generator().manual_seed(13)
    y = torch.randn(T, 60, N, generator=g) * 50
    var = torch.rand(T, 60, N, generator=g).to(torch.bfloat16)
    seed_gen = torch.Generator().manual_seed(14)
    out, _ = finish_read(y, var, rm, HERMES, seed_gen)
    seed = int(torch.randint(0, 2**62, (1,), generator=torch.Generator().manual_seed(14)))
    ref, _ = fused.fused_noise_adc(y, var, rm.out_var, rm.post, rm.code_max, seed)
    assert torch.equal(out, ref)


def test_channels_last_and_strided_inputs_read_alike():
    w, rm = _setup(QUIET.replace(rows=16), 3, 4, (3, 3))
    geo = _geo((3, 3), (2, 1), (1, 1), (1, 1))
    x = torch.randn(2, 3, 9, 12, generator=torch.Generator().manual_seed(15))
    ref = conv_mvm(x, rm, QUIET, geo, method="fused")
    assert torch.equal(conv_mvm(x.to(memory_format=torch.channels_last), rm, QUIET, geo, method="fused"), ref)
    wide = torch.zeros(2, 3, 9, 24)
    wide[..., ::2] = x  # a view with a width stride of 2
    assert torch.equal(conv_mvm(wide[..., ::2], rm, QUIET, geo, method="fused"), ref)
