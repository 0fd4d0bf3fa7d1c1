"""Programming of differential pairs and the read noise of drifted devices, through the tiles.

Tolerances are 5 standard errors for the sample size (fixed seeds): SE(mean) = s / sqrt(n),
SE(proportion) = sqrt(p (1 - p) / n), SE(std) ~= s / sqrt(2 (n - 1)).
"""
import math

import torch
from torch import nn

import aimc
from aimc.chips import MappingConfig, NoiseConfig
from aimc.physics.pcm import PCM
from aimc.physics.rram import RRAM
from aimc.tiles import encode, program_tiles

IDEAL = aimc.chips.load("ideal")
Z = 5.0


def test_unused_device_of_each_pair_is_programmed_with_reset_noise():
    """PCM (Nandakumar 2019): the unused device of a pair targets g_min = 0 and gets
    programming noise sigma_prog(0) = 0.26348 µS clipped at 0 S: half the devices read
    exactly 0, the others |N(0, sigma)|: E[g] = sigma / sqrt(2 pi), E[g^2] = sigma^2 / 2.
    Padding rows (no weight) stay unprogrammed: exactly 0 S, no drift."""
    dev = PCM()
    chip = IDEAL.replace(device=dev)
    w = torch.randn(200, 301, generator=torch.Generator().manual_seed(0))  # in = 301: 2 tiles of 151 rows, 1 padding
    st = program_tiles(encode(w, chip), chip, torch.Generator().manual_seed(1)).state
    g, nu = st.g_uS[0], st.drift[0]  # (2, T, R, out)
    used = torch.arange(2 * 151).view(2, 151) < 301  # rows that hold an input
    assert bool((g[:, ~used] == 0).all()) and bool((nu[:, ~used] == 0).all())
    # the unused device of each used pair: the one whose polarity the weight does not use
    w_t = w.t().contiguous()  # (in, out)
    g_used = g[:, used]  # (2, in, out)
    idle = torch.where(w_t > 0, g_used[1], g_used[0]).flatten().double()
    n = idle.numel()
    sigma = 0.26348
    p0 = float((idle == 0).double().mean())
    assert abs(p0 - 0.5) <= Z * math.sqrt(0.25 / n)
    mean_sd = sigma * math.sqrt(0.5 - 1 / (2 * math.pi))  # std of max(N(0, s^2), 0)
    assert abs(float(idle.mean()) - sigma / math.sqrt(2 * math.pi)) <= Z * mean_sd / math.sqrt(n)
    sq_sd = sigma**2 * math.sqrt(1.5 - 0.25)  # std of g^2: E[g^4] = 3 s^4 / 2
    assert abs(float((idle**2).mean()) - sigma**2 / 2) <= Z * sq_sd / math.sqrt(n)
    nu_idle = torch.where(w_t > 0, nu[1, used], nu[0, used])
    assert float((nu_idle > 0).double().mean()) > 0.95  # drifts: mu(0) = 0.1, sd 0.045


def test_encode_marks_the_rows_that_hold_weights():
    enc = encode(torch.ones(3, 301), IDEAL)  # in = 301 on 256-row tiles: 2 tiles of 151 rows
    assert enc.used.shape == (2, 151) and enc.used.dtype == torch.bool
    assert bool(enc.used.flatten()[:301].all()) and not bool(enc.used.flatten()[301:].any())
    assert bool((enc.g_target_uS[:, :, ~enc.used] == 0).all())


def test_padding_rows_stay_unprogrammed_even_when_g_min_is_positive():
    """RRAM's g_min = 4 µS: every device of a used row is programmed (> 0), padding is 0."""
    chip = IDEAL.replace(device=RRAM())
    enc = encode(torch.randn(8, 301, generator=torch.Generator().manual_seed(2)), chip)  # 1 padding row
    st = program_tiles(enc, chip, torch.Generator().manual_seed(3)).state
    assert bool((st.g_uS[:, :, enc.used] > 0).all())
    assert bool((st.g_uS[:, :, ~enc.used] == 0).all()) and bool((st.drift[:, :, ~enc.used] == 0).all())


def test_read_noise_after_a_year_of_drift_follows_the_programmed_state():
    """One input row, 10,000 columns, PCM drifting for a year: each output is one pair read
    once, y = (g+(t) - g-(t) + n) * scale / dg with std(n)^2 = sd+^2 + sd-^2 and
    sd = |g(t)| Q_s(g_prog) sqrt(ln((t + t_read) / (2 t_read))) (aihwkit 1.2). With Q_s taken
    at the drifted g(t) the noise would be (g_prog / g(t))^0.65 ~ 1.6x larger."""
    dev = PCM()
    chip = IDEAL.replace(device=dev, cols=10_000, noise=NoiseConfig(read_noise=True, out_noise=0.0),
                         mapping=MappingConfig(weight_scaling="per_tensor"))  # weights spread over [0, g_max]
    lin = nn.Linear(1, 10_000, bias=False)
    a = aimc.convert(lin, chip)
    aimc.program(a, seed=4)
    t = 31_536_000.0
    aimc.drift(a, t)
    with torch.no_grad():
        y = a(torch.ones(1, 1))[0].double()
    g_prog = a.g_uS[0, :, 0, 0, :].double()  # (2, out)
    g_t = g_prog * (t / dev.t0_s) ** (-a.drift_state[0, :, 0, 0, :].double())
    q = (0.0088 / (g_prog / dev.g_max_uS).pow(0.65).clamp(min=1e-3)).clamp(max=0.2)  # Joshi 2020 Q_s
    sd = g_t * q * math.sqrt(math.log((t + dev.t_read_s) / (2 * dev.t_read_s)))
    unit = float(a.out_scale[0, 0, 0]) / dev.g_max_uS
    sigma = (sd[0] ** 2 + sd[1] ** 2).sqrt() * unit
    live = sigma > 0  # pairs whose both devices were clipped to 0 S by programming read exactly 0
    assert int(live.sum()) > 9_900
    z = (y - (g_t[0] - g_t[1]) * unit)[live] / sigma[live]
    n = z.numel()
    assert abs(float(z.mean())) <= Z / math.sqrt(n)
    assert abs(float(z.std()) - 1) <= Z / math.sqrt(2 * (n - 1)) + 0.005  # + bf16 variance matmul
