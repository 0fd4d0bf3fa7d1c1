"""The LRA table's paired gap: the difference of two models' accuracy on one test set and
its standard error over the test items."""
import math

import pytest
import torch

from aimc.experiments.lra import markdown, paired_gap


def test_paired_gap_is_the_mean_difference_with_its_standard_error():
    g = torch.Generator().manual_seed(0)
    base = torch.rand(4000, generator=g) < 0.36
    chips = [base ^ (torch.rand(4000, generator=g) < 0.1) for _ in range(5)]
    gap, se = paired_gap(chips, base)
    d = [sum(float(c[i]) for c in chips) / 5 - float(base[i]) for i in range(4000)]
    mean = sum(d) / len(d)
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / (len(d) - 1))
    assert gap == pytest.approx(100 * mean, abs=1e-9)
    assert se == pytest.approx(100 * sd / math.sqrt(len(d)), rel=1e-9)


def test_paired_gap_of_identical_models_is_zero_with_zero_error():
    base = torch.tensor([True, False, True, True])
    assert paired_gap([base.clone(), base.clone()], base) == (0.0, 0.0)


def test_paired_gap_error_shrinks_as_one_over_root_n():
    # Independent flips of 10 % of the answers: the per-item difference has the same
    # spread at any n, so quadrupling the test set halves the error.
    def se(n: int) -> float:
        g = torch.Generator().manual_seed(1)
        base = torch.rand(n, generator=g) < 0.36
        return paired_gap([base ^ (torch.rand(n, generator=g) < 0.1)], base)[1]
    assert se(40_000) / se(10_000) == pytest.approx(0.5, rel=0.05)


def test_paired_gap_refuses_a_single_item():
    with pytest.raises(ValueError, match="at least 2 test items"):
        paired_gap([torch.tensor([True])], torch.tensor([False]))


def test_markdown_prints_the_hat_gap_with_its_error():
    rows = [dict(model="fp-softmax", mean=36.0, std=0.0, per_chip=[36.0]),
            dict(model="fp-kernel", mean=36.2, std=0.0, per_chip=[36.2], gap=0.2, gap_se=0.3),
            dict(model="kernel-analog", mean=35.1, std=0.8, per_chip=[35.0, 35.2], gap=-0.9, gap_se=0.4),
            dict(model="kernel-hat", mean=35.0, std=0.7, per_chip=[34.9, 35.1], gap=-1.0, gap_se=0.4)]
    text = markdown(dict(task="listops", budget="cpu", time="1 day", chip="pcm-hermes", rows=rows,
                         ibm_fp_accuracy=37.5))
    assert "| kernel + HAT minus FP softmax (± test-set s.e.) | -1.00 ± 0.40 |" in text
    assert "| kernel + HAT, pcm-hermes | 35.00 ± 0.70 (2 chips) |" in text
