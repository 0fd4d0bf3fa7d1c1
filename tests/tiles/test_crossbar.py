"""Crossbar tiles: quantisation bounds, bound management, slicing, read-noise statistics."""
import math

import pytest
import torch
from torch import nn

import aimc
from aimc.chips import ADCConfig, DACConfig, MappingConfig, NoiseConfig
from aimc.physics.devices import DeviceState
from aimc.physics.pcm import PCM
from aimc.tiles import TileLayout, encode

IDEAL = aimc.chips.load("ideal")


def analog(lin, chip, seed=0):
    a = aimc.convert(lin, chip)
    aimc.program(a, seed=seed)
    return a


def test_layout_counts_tiles():
    lay = TileLayout.of((300, 600), IDEAL)  # out=300, in=600
    assert (lay.t_in, lay.t_out, lay.n_tiles) == (3, 2, 6)


def test_adc_error_within_quantisation_bound():
    bound = 300.0  # > rows: no saturation possible
    chip = IDEAL.replace(adc=ADCConfig(bits=8, bound=bound, bound_management=False))
    lin = nn.Linear(600, 50, bias=False)
    a = analog(lin, chip)
    x = torch.randn(64, 600)
    with torch.no_grad():
        err = (a(x) - lin(x)).abs()
        lsb = bound / 127
        amax = x.abs().amax(dim=1, keepdim=True)  # noise management
        limit = amax * a.out_scale[0].sum(dim=0) * lsb / 2  # each tile's code rounds by <= lsb/2
    assert (err <= limit * (1 + 1e-4) + 1e-5).all()
    assert err.max() > 0.05 * limit.max()  # the quantiser is really there


def test_dac_error_within_quantisation_bound():
    chip = IDEAL.replace(dac=DACConfig(bits=6))
    lin = nn.Linear(300, 20, bias=False)
    a = analog(lin, chip)
    x = torch.randn(32, 300)
    with torch.no_grad():
        err = (a(x) - lin(x)).abs()
        step = x.abs().amax(dim=1, keepdim=True) / 31  # 6-bit signed: 31 levels each side
        limit = step / 2 * lin.weight.abs().sum(dim=1)
    assert (err <= limit * (1 + 1e-4)).all()
    assert err.max() > 0.01 * limit.max()


def test_bound_management_recovers_saturated_outputs():
    lin = nn.Linear(256, 8, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    x = torch.ones(4, 256)  # every column sums to 256 device units
    base = IDEAL.replace(adc=ADCConfig(bits=8, bound=100.0, bound_management=False))
    clipped = analog(lin, base)(x)
    assert torch.allclose(clipped, torch.full_like(clipped, 100.0))
    managed = analog(lin, base.replace(adc=ADCConfig(bits=8, bound=100.0, bound_management=True, bm_max_iter=3)))(x)
    assert torch.allclose(managed, torch.full_like(managed, 256.0), rtol=0.02)


@pytest.mark.parametrize("mapping", [MappingConfig(slices=2, slice_base=1.0), MappingConfig(weight_scaling="per_tensor")])
def test_mappings_are_exact_on_ideal_devices(mapping):
    lin = nn.Linear(300, 30)
    x = torch.randn(5, 300)
    assert torch.allclose(analog(lin, IDEAL.replace(mapping=mapping))(x), lin(x), atol=1e-5)


def test_bit_slicing_extends_precision_of_level_devices():
    from aimc.physics.sram import SRAM
    lin = nn.Linear(64, 16, bias=False)
    x = torch.randn(8, 64)
    one = IDEAL.replace(device=SRAM(bits=4))
    two = one.replace(mapping=MappingConfig(slices=2, slice_base=8.0))
    e1 = (analog(lin, one)(x) - lin(x)).abs().mean()
    e2 = (analog(lin, two)(x) - lin(x)).abs().mean()
    assert e2 < e1 / 4  # 3 extra bits of weight precision


def test_read_noise_is_output_referred_with_exact_variance():
    """Var(y_j) = sum_i x_i^2 (sigma(G+_ij)^2 + sigma(G-_ij)^2) * (scale_j / dg)^2."""
    dev = PCM(prog_noise_scale=0.0, drift_scale=0.0)
    chip = IDEAL.replace(device=dev, noise=NoiseConfig(read_noise=True, out_noise=0.0),
                         mapping=MappingConfig(weight_scaling="per_tensor"))
    lin = nn.Linear(300, 3, bias=False)
    a = analog(lin, chip)
    t = 3600.0
    aimc.drift(a, t)
    x = torch.randn(1, 300)
    n = 20_000
    with torch.no_grad():
        y = a(x.expand(n, 300))
    g = a.g_uS[0]  # (2, T, R, out)
    sd = dev.read_noise_std_uS(DeviceState(g, a.drift_state[0]), t)
    xi = a.layout.split_in(x[0])[..., None]  # (T, rows_used, 1)
    s = a.out_scale[0, 0, 0]
    var = ((xi**2) * (sd[0] ** 2 + sd[1] ** 2)).sum(dim=(0, 1)) * (s / dev.g_max_uS) ** 2
    assert torch.allclose(y.mean(0), lin(x)[0], atol=float(5 * var.sqrt().max() / math.sqrt(n)))
    rel_se = math.sqrt(2 / (n - 1))
    assert ((y.var(0) / var - 1).abs() <= 5 * rel_se + 0.01).all()  # + bf16 variance matmul


def test_output_noise_std():
    chip = IDEAL.replace(noise=NoiseConfig(read_noise=False, out_noise=0.1))
    lin = nn.Linear(40, 2, bias=False)
    a = analog(lin, chip)
    x = torch.zeros(20_000, 40)
    x[:, 0] = 1.0  # amax = 1: outputs in device units times the column scale
    with torch.no_grad():
        y = a(x)
    want = 0.1 * a.out_scale[0, 0]
    assert ((y.std(0) / want - 1).abs() <= 5 * math.sqrt(2 / 19_999)).all()


def test_encode_rejects_bad_weights():
    with pytest.raises(ValueError, match="NaN or Inf"):
        encode(torch.tensor([[1.0, float("nan")]]), IDEAL)
    with pytest.raises(ValueError, match="2-D"):
        encode(torch.ones(2, 2, 2), IDEAL)


def test_read_noise_per_device_matches_formula_on_10000_devices():
    """One input row, 10,000 columns: each output is one device pair read once."""
    dev = PCM(prog_noise_scale=0.0, drift_scale=0.0)
    chip = IDEAL.replace(device=dev, cols=10_000, noise=NoiseConfig(read_noise=True, out_noise=0.0))
    lin = nn.Linear(1, 10_000, bias=False)
    a = analog(lin, chip)
    t = 86_400.0
    aimc.drift(a, t)
    with torch.no_grad():
        y = a(torch.ones(1, 1))[0]
    g = a.g_uS[0, :, 0, 0, :]  # (2, out): G+ and G- of each weight
    sd = dev.read_noise_std_uS(DeviceState(g, a.drift_state[0, :, 0, 0, :]), t)
    sigma = (sd[0] ** 2 + sd[1] ** 2).sqrt() * a.out_scale[0, 0] / dev.g_max_uS
    z = (y - lin.weight[:, 0].detach()) / sigma  # standardised read errors: N(0, 1) if the formula holds
    n = z.numel()
    assert abs(float(z.mean())) <= 5 / math.sqrt(n)
    assert abs(float(z.std()) - 1) <= 5 / math.sqrt(2 * (n - 1)) + 0.005  # + bf16 variance
