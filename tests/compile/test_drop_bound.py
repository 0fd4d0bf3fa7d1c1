"""The upper confidence bound of a plan's accuracy drop (``aimc.compile.simulate.drop_bound``):
exact in the limits, and covering the true drop at its stated confidence when chips and
images are both drawn at random."""
from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import t as student_t

from aimc.compile.simulate import drop_bound


def test_identical_chips_reduce_to_the_paired_binomial_bound():
    fp = torch.ones(400, dtype=torch.bool)
    ok = torch.ones(3, 400, dtype=torch.bool)
    ok[:, :8] = False  # every chip loses the same 8 images: no chip-to-chip spread
    b = drop_bound(fp, ok, 0.9)
    p = 8 / 400
    assert b.mean == pytest.approx(p, abs=1e-15)
    assert b.se == pytest.approx(math.sqrt(p * (1 - p) / 399), rel=1e-12)  # var (ddof 1) / N
    assert b.df == pytest.approx(399, rel=1e-12)
    c = student_t.ppf(0.9, 399) * b.se / math.sqrt(p)  # the score bound, solved for D0
    assert b.upper == pytest.approx(((c + math.sqrt(c * c + 4 * p)) / 2) ** 2, rel=1e-12)
    d0 = b.upper  # at D0 the statistic with the variance scaled to D0 is exactly t
    assert (d0 - p) / (b.se * math.sqrt(d0 / p)) == pytest.approx(student_t.ppf(0.9, 399), rel=1e-12)
    assert b.upper > p + student_t.ppf(0.9, 399) * b.se  # above the Wald bound


def test_point_estimate_gains_and_exact_plans():
    fp = torch.tensor([True, False, True, True])
    ok = torch.tensor([[True, True, True, True], [True, True, True, True]])  # the plan gains image 1
    b = drop_bound(fp, ok, 0.5)
    assert b.mean == -0.25 and b.upper == b.mean
    g = drop_bound(fp, ok, 0.95)  # chips agree, so se = image term alone, df = N - 1
    assert g.se == pytest.approx(0.25) and g.df == pytest.approx(3.0)
    # gains only, nothing lost: the zero-event binomial bound of the loss rate minus the gains
    assert g.upper == pytest.approx(-0.25 + 1 - 0.05 ** (1 / 8), rel=1e-12)
    assert drop_bound(fp[:3], ok[:, :3], 0.95).upper == pytest.approx(-1 / 3 + 1 - 0.05 ** (1 / 6), rel=1e-12)
    same = drop_bound(fp, fp.expand(2, 4), 0.99)  # nothing lost in 8 trials: 1 - 0.01^(1/8)
    assert same.mean == same.se == 0.0 and same.upper == pytest.approx(1 - 0.01 ** (1 / 8), rel=1e-12)
    assert drop_bound(fp, fp.expand(2, 4), 0.5).upper == 0.0
    mixed = torch.stack([torch.tensor([True, True, True, False]), fp])  # chip 0 gains 1, loses 1: D = 0
    m = drop_bound(fp, mixed, 0.95)
    assert m.mean == 0.0 and m.upper == pytest.approx(student_t.ppf(0.95, m.df) * m.se, rel=1e-12)  # Wald


def test_bad_arguments_name_the_problem():
    fp = torch.ones(10, dtype=torch.bool)
    with pytest.raises(ValueError, match="at least 2 chips"):
        drop_bound(fp, fp[None], 0.95)
    assert drop_bound(fp, fp[None], 0.5).upper == 0.0  # one chip, point estimate: allowed
    with pytest.raises(ValueError, match=r"confidence must lie in \[0.5, 1\)"):
        drop_bound(fp, fp.expand(2, 10), 1.0)
    with pytest.raises(ValueError, match=r"plan_correct must be \(chips, \(10,\)\)"):
        drop_bound(fp, torch.ones(2, 9, dtype=torch.bool), 0.9)


@pytest.mark.parametrize("fragile, q_max", [(0.05, 0.4), (0.02, 1.0), (0.2, 0.1)])
def test_the_bound_covers_the_true_drop_at_its_confidence(fragile, q_max):
    # Two-way random model: image i is fragile with probability `fragile` (FP right on
    # every image); chip s loses a fragile image with probability q_s ~ U(0, q_max). True
    # drop: fragile x q_max / 2 (1 point). Over 400 calibrations of 5 chips x 360 images
    # the 90 % bound must cover it in 90 % of them: a binomial count, 3 sigma = 4.5 %;
    # the point estimate alone covers it about half the time.
    g = torch.Generator().manual_seed(0)
    trials, chips, n, conf, truth = 400, 5, 360, 0.9, fragile * q_max / 2
    fp = torch.ones(n, dtype=torch.bool)
    covered, covered_mean = 0, 0
    for _ in range(trials):
        weak = torch.rand(n, generator=g) < fragile
        q = q_max * torch.rand(chips, 1, generator=g)
        lost = weak[None, :] & (torch.rand(chips, n, generator=g) < q)
        b = drop_bound(fp, ~lost, conf)
        covered += b.upper >= truth
        covered_mean += b.mean >= truth
    sigma = math.sqrt(conf * (1 - conf) / trials)
    assert conf - 3 * sigma <= covered / trials <= conf + 3 * sigma + 0.03  # conservative by σ_res²/(S N) only
    assert covered_mean / trials < 0.6
