"""The tiny dense/MoE LM and the movie-review character corpus."""
import bz2
import csv
import io

import pytest
import torch
from hypothesis import given, settings, strategies as st

from aimc.workloads.moe_lm import CharCorpus, MoEFeedForward, TinyLM, equal_active_width, movie_review_text


def _write(tmp_path, rows, name="c.csv.bz2"):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["category", "text"])
    w.writerows(rows)
    p = tmp_path / name
    p.write_bytes(bz2.compress(buf.getvalue().encode()) if name.endswith(".bz2") else buf.getvalue().encode())
    return p


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["fresh", "rotten", "plot"]),
                          st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)),
                max_size=8))
def test_movie_review_text_round_trips_and_drops_plot(tmp_path_factory, rows):
    p = _write(tmp_path_factory.mktemp("c"), rows)
    assert movie_review_text(p) == [t for c, t in rows if c != "plot"]


def test_movie_review_text_rejects_missing_columns(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("label,body\nfresh,good\n")
    with pytest.raises(ValueError, match="category"):
        movie_review_text(p)


def test_bundled_corpus_has_the_documented_snippets():
    assert len(movie_review_text()) == 12808  # 7,403 fresh + 5,405 rotten (DATA.md)


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
