"""Defect model: Stapper's negative-binomial yield, its Poisson limit, Monte Carlo agreement."""
import math

import pytest
import torch

from aimc.physics.defects import DefectModel, die_density_factor, line_hit, negative_binomial_yield, survives


def test_zero_defects_yield_one():
    assert negative_binomial_yield(5.0, 0.0, 2.0) == 1.0
    assert negative_binomial_yield(5.0, 0.0, None) == 1.0
    assert DefectModel(d0_per_cm2=0.0).die_yield(800.0) == 1.0
    g = die_density_factor(100, 2.0, torch.Generator().manual_seed(0))
    assert bool(survives(0.0 * g, 100.0, torch.Generator().manual_seed(1)).all())


def test_formula_golden_and_poisson_limit():
    assert negative_binomial_yield(1.0, 0.5, 2.0) == pytest.approx(0.64, abs=1e-15)  # (1 + 0.25)^-2
    lam = 0.7
    for alpha in (1e3, 1e5):  # (1 + lam/a)^-a = exp(-lam + lam^2/(2a) + O(a^-2))
        y = negative_binomial_yield(1.0, lam, alpha)
        assert y == pytest.approx(math.exp(-lam + lam ** 2 / (2 * alpha)), rel=lam ** 3 / alpha ** 2 + 1e-12)
        assert y > math.exp(-lam)  # clustering always raises yield at the same mean density
    assert negative_binomial_yield(1.0, lam, None) == math.exp(-lam)


@pytest.mark.parametrize("alpha", [0.5, 2.0, None])
def test_monte_carlo_matches_negative_binomial(alpha):
    n, area_mm2, d0 = 40000, 80.0, 1.2  # lam = 0.96 defects per die
    gen = torch.Generator().manual_seed(3)
    g = die_density_factor(n, alpha, gen)
    alive = survives(d0 / 100.0 * g, area_mm2, gen)
    y = negative_binomial_yield(area_mm2 / 100.0, d0, alpha)
    se = math.sqrt(y * (1 - y) / n)
    assert abs(float(alive.double().mean()) - y) <= 4 * se


def test_density_factor_moments():
    n, alpha = 40000, 2.0
    g = die_density_factor(n, alpha, torch.Generator().manual_seed(0))
    assert abs(float(g.mean()) - 1.0) <= 4 * math.sqrt(1 / alpha / n)
    # var of the sample variance of a Gamma: (mu4 - sigma^4)/n with mu4 = 3/a^2 + 6/a^3 for mean 1
    var_se = math.sqrt((3 / alpha ** 2 + 6 / alpha ** 3 - 1 / alpha ** 2) / n)
    assert abs(float(g.var()) - 1 / alpha) <= 4 * var_se


def test_line_hit_rate():
    rate = torch.tensor([0.0, 0.05, 1.0], dtype=torch.float64)
    hit = line_hit(rate, (20000,), torch.Generator().manual_seed(0))
    assert not bool(hit[0].any())
    for k in (1, 2):
        p = 1 - math.exp(-float(rate[k]))
        assert abs(float(hit[k].double().mean()) - p) <= 4 * math.sqrt(p * (1 - p) / 20000)


def test_deterministic():
    a = die_density_factor(50, 2.0, torch.Generator().manual_seed(9))
    b = die_density_factor(50, 2.0, torch.Generator().manual_seed(9))
    assert torch.equal(a, b)


@pytest.mark.parametrize("kw, field", [({"d0_per_cm2": -1.0}, "d0_per_cm2"), ({"alpha": 0.0}, "alpha"),
                                        ({"fatal_share": 0.6, "row_share": 0.3, "col_share": 0.2}, "share"),
                                        ({"p_stuck_on": 0.7, "p_stuck_off": 0.6}, "p_stuck")])
def test_bad_defect_model(kw, field):
    with pytest.raises(ValueError, match=field):
        DefectModel(**kw)


def test_bad_arguments():
    with pytest.raises(ValueError, match="alpha"):
        negative_binomial_yield(1.0, 1.0, -1.0)
    with pytest.raises(ValueError, match="area_cm2"):
        negative_binomial_yield(-1.0, 1.0, 2.0)
    with pytest.raises(ValueError, match="n_dies"):
        die_density_factor(0, 2.0, torch.Generator())
