"""DAC/ADC: code ranges, rounding and saturation."""
import torch

from aimc.physics.periphery import adc_codes_, dac_codes, max_code


def test_max_code():
    assert [max_code(b) for b in (1, 2, 8, None)] == [0, 1, 127, None]


def test_dac_rounds_and_clips():
    x = torch.tensor([-3.0, -1.0, -0.004, 0.004, 0.5, 1.0, 7.0])
    assert dac_codes(x.clone(), 8).tolist() == [-127, -127, -1, 1, 64, 127, 127]  # 0.004*127=0.508
    assert torch.equal(dac_codes(x.clone(), None), x.clamp(-1, 1))
    err = (dac_codes(torch.linspace(-1, 1, 10001), 8) / 127 - torch.linspace(-1, 1, 10001)).abs().max()
    assert err <= 0.5 / 127 + 1e-7


def test_adc_saturates_at_full_scale():
    y = torch.tensor([-500.0, -126.6, 0.49, 126.4, 900.0])
    assert adc_codes_(y, 127).tolist() == [-127, -127, 0, 126, 127]
