"""Digit reads (aimc.tiles.sense): exact in the ideal limit, error rates at the analytic values."""
import math

import pytest
import torch

from aimc.chips import load
from aimc.physics.rram import RRAM
from aimc.tiles.sense import (column_exists, level_conductances_uS, program_digits, sense_all, sense_error_rate,
                              sense_rows)


def _phi(z):
    return 0.5 * math.erfc(-z / math.sqrt(2))


def _rram(**kw):
    base = dict(sigma_d2d=0.0, sigma_c2c=0.0, p_stuck_on=0.0, p_stuck_off=0.0, sigma_ret_uS=0.0, read_noise_rel=0.0)
    base.update(kw)
    return RRAM(**base)


def _within(p_hat, p, n):
    """Binomial: |p_hat - p| within 4.5 standard errors (a 1-in-150,000 false alarm)."""
    assert abs(p_hat - p) <= 4.5 * math.sqrt(p * (1 - p) / n) + 1e-12, (p_hat, p, n)


@pytest.mark.parametrize("levels", [2, 4])
def test_ideal_reads_are_exact(levels):
    g = torch.Generator().manual_seed(0)
    d = torch.randint(0, levels, (300, 7), generator=g)
    arr = program_digits(d, levels, load("ideal").device, g)
    assert torch.equal(sense_all(arr, g).long(), d)
    rows = torch.randperm(300, generator=g)[:50]
    assert torch.equal(sense_rows(arr, 3, rows, g), d[rows, 3])
    if levels == 2:
        for col in range(7):
            assert column_exists(arr, col, rows, g) == bool((d[rows, col] == 0).any())


def test_level_conductances_on_the_device_grid():
    assert level_conductances_uS(RRAM(), 2).tolist() == [40.0, 4.0]
    with pytest.raises(ValueError, match="n_levels=4"):
        level_conductances_uS(RRAM(n_levels=4, g_min_uS=4.0), 8)


@pytest.mark.parametrize("kw, g_nom, ref, sigma, rel", [
    (dict(read_noise_rel=0.3), 40.0, 22.0, 0.0, 0.3),   # Gaussian read noise: Φ(-1.5)
    (dict(sigma_d2d=0.3), 40.0, 22.0, 0.3, 0.0),        # lognormal programming spread
])
def test_binary_misread_rate_matches_the_margin(kw, g_nom, ref, sigma, rel):
    n = 40000
    g = torch.Generator().manual_seed(1)
    arr = program_digits(torch.zeros(n, 1, dtype=torch.long), 2, _rram(**kw), g)
    p_hat = float((sense_all(arr, g) != 0).float().mean())
    p = sense_error_rate(g_nom, ref, sigma, rel, above=True)
    assert p > 0.01
    _within(p_hat, p, n)


def test_multilevel_margin_is_tighter():
    """Level 28 µS between references 34 and 22 µS with 10 % read noise: 2 Φ(-6/2.8)."""
    n = 40000
    g = torch.Generator().manual_seed(2)
    dev = _rram(read_noise_rel=0.1)
    arr = program_digits(torch.ones(n, 1, dtype=torch.long), 4, dev, g)
    p_hat = float((sense_all(arr, g) != 1).float().mean())
    p = 2 * _phi(-6.0 / 2.8)
    _within(p_hat, p, n)
    binary = program_digits(torch.zeros(n, 1, dtype=torch.long), 2, dev, g)
    assert float((sense_all(binary, g) != 0).float().mean()) < p_hat / 100  # binary margin 18 µS: Φ(-4.5)


def test_wired_or_false_alarm_grows_with_rows():
    """All candidates hold a 1 (HRS, 4 µS, 50 % read noise): the summed current is exactly
    Gaussian, N(n g_off, n (0.5 g_off)^2), and crosses n g_off + 18 µS with Φ(-18 / (2 sqrt n))."""
    g = torch.Generator().manual_seed(3)
    trials = 3000
    for n in (16, 256):
        arr = program_digits(torch.ones(n, 1, dtype=torch.long), 2, _rram(read_noise_rel=0.5), g)
        rows = torch.arange(n)
        hits = sum(column_exists(arr, 0, rows, g) for _ in range(trials))
        _within(hits / trials, _phi(-18.0 / (2.0 * math.sqrt(n))), trials)


def test_bad_input():
    dev = load("ideal").device
    g = torch.Generator()
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        program_digits(torch.tensor([[2]]), 2, dev, g)
    with pytest.raises(ValueError, match="rows, digits"):
        program_digits(torch.tensor([0, 1]), 2, dev, g)
    arr = program_digits(torch.tensor([[3]]), 4, RRAM(), g)
    with pytest.raises(ValueError, match="binary cells"):
        column_exists(arr, 0, torch.tensor([0]), g)


def test_wired_or_finds_a_one_for_max_searches():
    g = torch.Generator().manual_seed(5)
    d = torch.randint(0, 2, (64, 5), generator=g)
    arr = program_digits(d, 2, load("ideal").device, g)
    rows = torch.arange(0, 64, 3)
    for col in range(5):
        assert column_exists(arr, col, rows, g, digit=1) == bool((d[rows, col] == 1).any())
    with pytest.raises(ValueError, match="0 or 1"):
        column_exists(arr, 0, rows, g, digit=2)
