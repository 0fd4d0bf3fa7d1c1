"""The tiny dense/MoE LM and the character corpus (the movie-review reader itself is
tested in tests/workloads/test_llm.py)."""
import pytest
import torch

from aimc.workloads.moe_lm import CharCorpus, MoEFeedForward, TinyLM, equal_active_width


def test_char_corpus_windows_are_shifted_targets():
    c = CharCorpus(["abcabc"] * 20, train_fraction=0.5, min_count=1)
    x, y = c.windows("train", 5, 4, seed=0)
    assert x.shape == y.shape == (5, 4) and torch.equal(x[:, 1:], y[:, :-1])
    assert c.vocab == 5  # unknown, newline, a, b, c


def test_moe_top1_uses_the_raw_probability_and_rejects_bad_k():
    m = MoEFeedForward(8, 8, n_experts=3, top_k=1, seed=0)
    w, idx = m.route(torch.randn(5, 8))
    assert bool((w < 1).all()) and idx.shape == (5, 1)
    with pytest.raises(ValueError, match="top_k"):
        MoEFeedForward(8, 8, n_experts=2, top_k=3)
    with pytest.raises(ValueError, match="multiple"):
        equal_active_width(10, 3)


def test_tiny_lm_is_causal_and_checks_length():
    lm = TinyLM(vocab=11, d=8, n_layers=1, n_heads=2, hidden=8, context=6, n_experts=2, top_k=1, seed=0).eval()
    a = torch.randint(0, 11, (1, 6), generator=torch.Generator().manual_seed(0))
    b = a.clone()
    b[0, -1] = (b[0, -1] + 1) % 11
    with torch.no_grad():
        torch.testing.assert_close(lm(a)[..., :-1], lm(b)[..., :-1])  # the future does not leak
    with pytest.raises(ValueError, match="context"):
        lm(torch.zeros(1, 7, dtype=torch.long))
