"""Fused noise + ADC + post-scale kernel: exactness against the PyTorch fallback, quality
of its counter-based normal stream, determinism, and the statistics of noisy outputs."""
import math

import pytest
import torch

from aimc.tiles import fused

pytestmark = pytest.mark.skipif(not fused.available(), reason="fused C++ kernel not available")

N_Z = 1 << 20  # samples for the distribution tests


def _case(T, B, N, code_max, seed=0):
    g = torch.Generator().manual_seed(seed)
    scale = 1.5 * max(code_max, 4)
    y = (torch.rand(T, B, N, generator=g) * 2 - 1) * scale
    y[:, ::3] = (y[:, ::3] * 2).round() / 2  # exact .5 ties in every third row
    y[:, 1::3] *= 0.5  # some rows that may not saturate
    post = torch.rand(T, 1, N, generator=g) + 0.1
    return y, post


@pytest.mark.parametrize("T,B,N", [(1, 3, 5), (4, 17, 1024), (3, 9, 1037), (16, 4, 4096)])
@pytest.mark.parametrize("code_max", [7, 127, -1])
def test_deterministic_part_equals_fallback(T, B, N, code_max):
    y, post = _case(T, B, N, code_max)
    out, sat = fused.fused_noise_adc(y, None, 0.0, post, code_max, seed=3)
    ref, ref_sat = fused.fallback_noise_adc(y, None, 0.0, post, code_max, seed=3)
    assert out.shape == (B, N) and out.dtype == torch.float32
    assert sat.shape == (B,) and sat.dtype == torch.bool
    assert torch.equal(out, ref)
    assert torch.equal(sat, ref_sat)
    if code_max < 0:
        assert not sat.any()


def test_round_half_to_even_and_saturation():
    y = torch.tensor([[[0.5, 1.5, 2.5, -0.5, -2.5, 3.5, 6.5, 7.0],
                       [0.49, -1.51, 7.5, 1.0, 0.0, 0.0, 0.0, 0.0],
                       [-7.0, -7.01, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]])  # (1, 3, 8)
    post = torch.ones(1, 1, 8)
    out, sat = fused.fused_noise_adc(y, None, 0.0, post, 7, seed=0)
    assert out[0].tolist() == [0.0, 2.0, 2.0, 0.0, -2.0, 4.0, 6.0, 7.0]
    assert out[1].tolist() == [0.0, -2.0, 7.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert out[2].tolist() == [-7.0, -7.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert sat.tolist() == [False, True, True]  # 7.0 is not > 7; 7.5 and -7.01 are


def test_post_scale_sums_over_tiles():
    y = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1).expand(3, 2, 4).contiguous()
    post = torch.tensor([1.0, 10.0, 100.0]).view(3, 1, 1).expand(3, 1, 4)  # non-contiguous
    out, _ = fused.fused_noise_adc(y, None, 0.0, post, -1, seed=0)
    assert torch.equal(out, torch.full((2, 4), 321.0))


def _stats(z):
    z = z.double()
    m = z.mean()
    c = z - m
    v = (c * c).mean()
    return m.item(), v.sqrt().item(), ((c**3).mean() / v**1.5).item(), ((c**4).mean() / v**2).item()


@pytest.mark.parametrize("seed,start", [(0, 0), (12345, 7_777_777), (-1, 2**40 + 1)])
def test_normal_stream_distribution(seed, start):
    z = fused.normal_stream(seed, start, N_Z)
    assert torch.isfinite(z).all()
    n = z.numel()
    mean, std, skew, kurt = _stats(z)
    assert abs(mean) < 5 / math.sqrt(n)
    assert abs(std - 1) < 5 * math.sqrt(0.5 / n)
    assert abs(skew) < 5 * math.sqrt(6 / n)
    assert abs(kurt - 3) < 5 * math.sqrt(24 / n)
    # Kolmogorov-Smirnov against N(0, 1); 1.95 / sqrt(n) is the alpha = 0.001 critical value
    zs, _ = z.double().sort()
    cdf = torch.special.ndtr(zs)
    i = torch.arange(1, n + 1, dtype=torch.float64)
    ks = torch.maximum(i / n - cdf, cdf - (i - 1) / n).max().item()
    assert ks < 1.95 / math.sqrt(n)
    # tails, within 5 binomial standard deviations
    for k in (3.0, 4.0):
        p = math.erfc(k / math.sqrt(2))
        count = (z.abs() > k).sum().item()
        assert abs(count - n * p) < 5 * math.sqrt(n * p * (1 - p)) + 1
    # independence of neighbours (lags 1, 2 and across a Box-Muller pair boundary) and of squares
    bound = 5 / math.sqrt(n)
    zd = z.double()
    for lag in (1, 2, 3, 1024):
        a, b = zd[:-lag], zd[lag:]
        assert abs(torch.corrcoef(torch.stack([a, b]))[0, 1].item()) < bound
        a2, b2 = a * a, b * b
        assert abs(torch.corrcoef(torch.stack([a2, b2]))[0, 1].item()) < bound
    ev, od = zd[0::2], zd[1::2]  # the two outputs of one pair
    assert abs(torch.corrcoef(torch.stack([ev * ev, od * od]))[0, 1].item()) < 5 / math.sqrt(n / 2)


def test_stream_offsets_consistent():
    z = fused.normal_stream(9, 0, 100_001)
    assert torch.equal(fused.normal_stream(9, 33_333, 50_000), z[33_333:83_333])
    assert torch.equal(fused.normal_stream(9, 1, 10), z[1:11])


def test_kernel_uses_the_stream():
    T, B, N = 3, 5, 1037  # odd N: rows start at odd linear indices
    y = torch.zeros(T, B, N)
    post = torch.zeros(T, 1, N)
    z = fused.normal_stream(42, 0, T * B * N).view(T, B, N)
    for t in range(T):
        p = post.clone()
        p[t] = 1.0
        out, _ = fused.fused_noise_adc(y, None, 1.0, p, -1, seed=42)
        assert torch.equal(out, z[t])


def test_same_seed_same_output_and_thread_independent():
    T, B, N = 4, 64, 1536
    g = torch.Generator().manual_seed(1)
    y = torch.randn(T, B, N, generator=g) * 40
    var = (torch.rand(T, B, N, generator=g) * 9).to(torch.bfloat16)
    post = torch.rand(T, 1, N, generator=g)
    threads = torch.get_num_threads()
    try:
        results = []
        for nt in (1, 2, 1):
            torch.set_num_threads(nt)
            results.append(fused.fused_noise_adc(y, var, 0.25, post, 63, seed=11))
    finally:
        torch.set_num_threads(threads)
    for out, sat in results[1:]:
        assert torch.equal(out, results[0][0])
        assert torch.equal(sat, results[0][1])
    other, _ = fused.fused_noise_adc(y, var, 0.25, post, 63, seed=12)
    assert not torch.equal(other, results[0][0])
    assert (other != results[0][0]).float().mean() > 0.5


def test_var_dtypes_and_out_var_agree():
    T, B, N = 2, 8, 300
    g = torch.Generator().manual_seed(2)
    y = torch.randn(T, B, N, generator=g)
    var = (torch.rand(T, B, N, generator=g) * 4).to(torch.bfloat16)
    post = torch.rand(T, 1, N, generator=g)
    a, _ = fused.fused_noise_adc(y, var, 0.5, post, -1, seed=5)
    b, _ = fused.fused_noise_adc(y, var.float(), 0.5, post, -1, seed=5)
    assert torch.equal(a, b)
    c, _ = fused.fused_noise_adc(y, None, 0.5, post, -1, seed=5)
    d, _ = fused.fused_noise_adc(y, torch.zeros(T, B, N), 0.5, post, -1, seed=5)
    assert torch.equal(c, d)


@pytest.mark.parametrize("impl", ["kernel", "fallback"])
def test_noisy_output_statistics(impl):
    f = fused.fused_noise_adc if impl == "kernel" else fused.fallback_noise_adc
    T, B, N = 4, 512, 512
    g = torch.Generator().manual_seed(3)
    var = (torch.rand(T, B, N, generator=g) * 3 + 0.1).to(torch.bfloat16)
    post = torch.rand(T, 1, N, generator=g) + 0.5
    out_var = 0.2
    out, sat = f(torch.zeros(T, B, N), var, out_var, post, -1, seed=4)
    assert not sat.any()
    expect_var = (post.double() ** 2 * (var.double() + out_var)).sum(0)  # (B, N)
    n = out.numel()
    w = out.double() / expect_var.sqrt()  # should be N(0, 1)
    assert abs(w.mean().item()) < 5 / math.sqrt(n)
    assert abs(w.var().item() - 1) < 5 * math.sqrt(2 / n)
    # unstandardised: the mean over all elements and the total variance
    assert abs(out.double().mean().item()) < 5 * math.sqrt(expect_var.mean().item() / n)
    assert abs((out.double() ** 2).mean().item() / expect_var.mean().item() - 1) < 5 * math.sqrt(2 / n) * 1.5


def test_noise_then_adc_saturation_flags():
    T, B, N = 2, 64, 256
    y = torch.zeros(T, B, N)
    post = torch.ones(T, 1, N)
    out, sat = fused.fused_noise_adc(y, None, 100.0, post, 3, seed=0)  # sigma 10 >> 3: all saturate
    assert sat.all()
    assert out.abs().max() <= 6 and torch.equal(out, out.round())
    out, sat = fused.fused_noise_adc(y, None, 1e-4, post, 3, seed=0)  # sigma 0.01: none saturate
    assert not sat.any() and not out.any()


def test_non_cpu_or_disabled_uses_fallback(monkeypatch):
    monkeypatch.setattr(fused.cpp, "load", lambda: None)
    y, post = _case(2, 3, 10, 7)
    out, sat = fused.fused_noise_adc(y, None, 0.0, post, 7, seed=0)
    ref, ref_sat = fused.fallback_noise_adc(y, None, 0.0, post, 7, seed=0)
    assert torch.equal(out, ref) and torch.equal(sat, ref_sat)


def test_variance_codes_round_each_variance_to_within_2_to_the_minus_5():
    """encode_var: an unsigned float of 4 exponent and 4 mantissa bits per column scale:
    rounded to nearest, so within 2^-5 of each variance over 14 octaves below the column's
    largest (exact at it: code 240), and below them within 2^-5 or within the smallest
    code (33/32 2^-15 of the scale, where a value rounds to 0); 0 stays 0."""
    g = torch.Generator().manual_seed(0)
    v = torch.rand(256, 500, generator=g) ** 6 * torch.logspace(-12, 3, 500)  # columns of any scale
    v[:, 7] = 0.0
    codes, scale = fused.encode_var(v)
    assert codes.dtype == torch.uint8 and scale.shape == (1, 500)
    d = fused.decode_var(codes, scale, torch.float32)
    big = v >= scale * 2.0**-14
    assert bool(((d - v).abs() <= 2.0**-5 * v * (1 + 1e-6))[big].all())
    small_ok = (d - v).abs() <= torch.maximum(2.0**-5 * v, scale * 2.0**-15 * 33 / 32) * (1 + 1e-6)
    assert bool(small_ok[~big].all())
    top = codes.gather(0, v.argmax(0, keepdim=True))[0]
    assert bool((top[torch.arange(500) != 7] == 240).all()) and bool((d[:, 7] == 0).all())
    # a column's summed variance (what a read uses) keeps far less of the rounding: the errors average
    assert float(((d.sum(0) / v.sum(0)) - 1)[v.sum(0) > 0].abs().max()) < 2.0**-5 / 3


@pytest.mark.parametrize("B", [1, 3, 8, 9, 40])
def test_variance_matmul_of_codes_equals_the_decoded_product(B):
    """The compiled small-batch kernel (B <= 8) and the decoded bf16 matmul (B > 8) read the
    codes as the same variances: sq @ decode_var(codes) within bf16 rounding."""
    g = torch.Generator().manual_seed(B)
    codes, scale = fused.encode_var(torch.rand(3, 70, 33, generator=g) ** 2)
    sq = (torch.randint(-127, 128, (3, B, 70), generator=g).float() ** 2).to(torch.bfloat16)
    ref = torch.bmm(sq.float(), fused.decode_var(codes, scale, torch.float32))
    got = fused.variance_matmul(sq, codes, scale).float()
    torch.testing.assert_close(got, ref, rtol=2**-7, atol=0.0)
    with pytest.raises(ValueError, match="var_scale"):
        fused.variance_matmul(sq, codes)
