"""DAC pre-pass and the fused kernel's row scale: bit-identical to their PyTorch fallbacks,
to the unfused ops they replace, and across thread counts."""
import pytest
import torch
import torch.nn.functional as F

from aimc.physics.periphery import dac_codes, max_code
from aimc.tiles import fused

pytestmark = pytest.mark.skipif(not fused.available(), reason="fused C++ kernel not available")


def _inputs(B, K, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, K, generator=g) * 3
    x[0] = 0.0  # an all-zero row: scale 1
    if B > 2:
        x[1, ::2] = (x[1, ::2] * 4).round() / 4  # many values landing on .5 ties after scaling
        x[2, : K // 2] = -x[2, : K // 2].abs().max()  # -0 and exact +-1 after scaling
    return x


@pytest.mark.parametrize("B,K,T,R", [(1, 1, 1, 1), (5, 300, 2, 256), (64, 1024, 4, 256), (3, 1030, 5, 256),
                                     (4, 20, 3, 8)])
@pytest.mark.parametrize("bits", [8, 4, None])
@pytest.mark.parametrize("given", [False, True])
def test_prepass_equals_fallback_and_unfused_ops(B, K, T, R, bits, given):
    x = _inputs(B, K)
    scale = torch.rand(B, generator=torch.Generator().manual_seed(1)) + 0.2 if given else None
    codes, sq, amax, used = fused.dac_prepass(x, scale, bits, T, R, squares=True)
    r_codes, r_sq, r_amax, r_used = fused.fallback_dac_prepass(x, scale, bits, T, R, squares=True)
    for a, b in ((codes, r_codes), (sq, r_sq), (amax, r_amax), (used, r_used)):
        assert a.dtype == b.dtype and torch.equal(a, b)
    # the ops the pre-pass replaces, as the read wrote them before
    ref_amax = x.abs().amax(dim=1, keepdim=True)
    s = scale[:, None] if given else torch.where(ref_amax > 0, ref_amax, torch.ones_like(ref_amax))
    ref = F.pad(dac_codes(x / s, bits), (0, T * R - K)).view(B, T, R).transpose(0, 1)  # (T, B, R)
    assert codes.shape == (T, B, R) and codes.is_contiguous() and sq.is_contiguous()
    assert torch.equal(codes, ref) and torch.equal(amax, ref_amax[:, 0]) and torch.equal(used, s[:, 0])
    assert torch.equal(sq, (ref * ref).to(torch.bfloat16))
    assert torch.equal(codes.signbit(), ref.signbit())  # -0 kept as torch keeps it
    if bits is not None:
        assert codes.abs().max() <= max_code(bits) and torch.equal(codes, codes.round())


def test_prepass_flags_nan_and_inf_rows():
    x = torch.ones(4, 10)
    x[1, 3], x[3, 0] = float("nan"), float("-inf")
    _, sq, amax, _ = fused.dac_prepass(x, None, 8, 2, 8, squares=False)
    assert sq is None
    assert torch.isfinite(amax).tolist() == [True, False, True, False]


def test_prepass_rejects_too_few_tiles():
    with pytest.raises(ValueError, match="tiles"):
        fused.dac_prepass(torch.ones(2, 8), None, 8, 1, 4, squares=False)


def test_prepass_thread_independent():
    x = _inputs(4096, 1100, seed=3)  # 4096 x 1280 > 2^22 elements: the parallel path
    threads = torch.get_num_threads()
    try:
        outs = []
        for nt in (1, 2):
            torch.set_num_threads(nt)
            outs.append(fused.dac_prepass(x, None, 8, 5, 256, squares=True))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(*outs))


@pytest.mark.parametrize("noisy", [False, True])
def test_row_and_column_scales_and_bias_come_last(noisy):
    T, B, N = 3, 7, 600
    g = torch.Generator().manual_seed(4)
    y = torch.randn(T, B, N, generator=g) * 30
    post = torch.rand(T, 1, N, generator=g)
    rs, cs, bias = torch.rand(B, generator=g) * 5, torch.randn(N, generator=g), torch.randn(N, generator=g)
    out_var = 0.5 if noisy else 0.0
    plain, sat = fused.fused_noise_adc(y, None, out_var, post, 63, seed=9)
    scaled, sat_s = fused.fused_noise_adc(y, None, out_var, post, 63, seed=9, row_scale=rs)
    assert torch.equal(scaled, plain * rs[:, None]) and torch.equal(sat, sat_s)
    full, _ = fused.fused_noise_adc(y, None, out_var, post, 63, seed=9, row_scale=rs, col_scale=cs, bias=bias)
    assert torch.equal(full, plain * rs[:, None] * cs + bias)  # each product rounded in turn, as in PyTorch
    only_bias, _ = fused.fused_noise_adc(y, None, out_var, post, 63, seed=9, bias=bias)
    assert torch.equal(only_bias, plain + bias)
    if not noisy:
        ref, _ = fused.fallback_noise_adc(y, None, 0.0, post, 63, seed=9, row_scale=rs, col_scale=cs, bias=bias)
        assert torch.equal(full, ref)


@pytest.mark.parametrize("noisy", [False, True])
def test_grouped_short_rows_with_scales_equal_one_row_at_a_time(noisy, monkeypatch):
    """``group`` rows of ``N`` outputs side by side in one row of ``y`` (short rows passed a
    few at a time) give the outputs of the ungrouped call bit for bit: the same linear
    indices (draws) and each row's own row scale, column scales and bias; ``out`` is
    filled in place (here rows of a larger tensor)."""
    T, B, N, k = 2, 12, 10, 4
    g = torch.Generator().manual_seed(5)
    y = torch.randn(T, B, N, generator=g) * 30
    var = torch.rand(T, B, N, generator=g).bfloat16() if noisy else None
    post = torch.rand(T, 1, N, generator=g)
    rs, cs, bias = torch.rand(B, generator=g) * 5, torch.randn(N, generator=g), torch.randn(N, generator=g)
    out_var = 0.5 if noisy else 0.0
    ref, _ = fused.fused_noise_adc(y, var, out_var, post, 63, seed=9, row_scale=rs, col_scale=cs, bias=bias)
    big = torch.full((B + 3, N), float("nan"))
    got, _ = fused.fused_noise_adc(y.reshape(T, B // k, k * N), None if var is None else var.reshape(T, B // k, k * N),
                                   out_var, post.repeat(1, 1, k), 63, seed=9, row_scale=rs, col_scale=cs, bias=bias,
                                   group=k, out=big[1:B + 1])
    assert torch.equal(got.reshape(B, N), ref) and torch.equal(big[1:B + 1], ref)
    assert big[0].isnan().all() and big[B + 1:].isnan().all()
    if not noisy:  # the pure-PyTorch path of the same call (no compiled kernels)
        monkeypatch.setattr(fused.cpp, "load", lambda: None)
        out = torch.empty(B * N)
        fb, _ = fused.fused_noise_adc(y.reshape(T, B // k, k * N), None, 0.0, post.repeat(1, 1, k), 63, seed=9,
                                      row_scale=rs, col_scale=cs, bias=bias, group=k, out=out)
        assert torch.equal(fb.reshape(B, N), ref) and torch.equal(out.view(B, N), ref)


@pytest.mark.parametrize("chip_name", ["pcm-hermes", "isaac", "ideal"])
def test_mvm_applies_output_scale_and_bias_as_separate_ops_would(chip_name):
    from aimc.chips import load
    from aimc.tiles import encode, mvm, program_tiles, read_matrices

    chip = load(chip_name)
    g = torch.Generator().manual_seed(5)
    w, x = torch.randn(40, 300, generator=g), torch.randn(9, 300, generator=g) * 4
    gain, bias = torch.rand(40, generator=g) + 0.5, torch.randn(40, generator=g)
    rm = read_matrices(program_tiles(encode(w, chip), chip, torch.Generator().manual_seed(6)), chip, 60.0)
    plain = mvm(x, rm, chip, torch.Generator().manual_seed(7))
    fused_out = mvm(x, rm, chip, torch.Generator().manual_seed(7), out_scale=gain, bias=bias)
    assert torch.equal(fused_out, plain * gain + bias)
