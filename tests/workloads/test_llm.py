"""Hugging Face transformers on analog tiles (issue 12, item 1): tiny randomly initialised
Llama and BERT models, built offline, run end to end; the real SmolLM2 tests are slow."""
import bz2
import json
import csv
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import aimc
from aimc.chips import load
from aimc.nn import AnalogLinear, analog_layers
from aimc.train.hat import HATConfig, enable_hat
from aimc.workloads import llm

transformers = pytest.importorskip("transformers")


def _llama(seed: int = 0):
    cfg = transformers.LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                                   bos_token_id=1, eos_token_id=2, pad_token_id=2)
    torch.manual_seed(seed)
    return transformers.LlamaForCausalLM(cfg).eval()


def _bert(seed: int = 0):
    cfg = transformers.BertConfig(vocab_size=80, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                                  num_attention_heads=4, max_position_embeddings=64)
    torch.manual_seed(seed)
    return transformers.BertModel(cfg).eval()


IDS = torch.randint(3, 96, (2, 12), generator=torch.Generator().manual_seed(1))


def _quiet_convert(model, chip, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a tiny model needs no warning
        return aimc.convert(model, chip, **kw)


def test_llama_on_ideal_equals_the_original_logits_with_every_projection_on_tiles():
    lm = _llama()
    a, rep = _quiet_convert(lm, "ideal", report=True)
    names = {n for n, _ in analog_layers(a)}
    per_block = {f"self_attn.{p}_proj" for p in "qkvo"} | {f"mlp.{p}_proj" for p in ("gate", "up", "down")}
    assert names == {f"model.layers.{i}.{p}" for i in range(2) for p in per_block} | {"lm_head"}
    assert not rep.digital_mvm  # embeddings, norms, rotary: digital by nature
    with torch.no_grad():
        torch.testing.assert_close(a(input_ids=IDS).logits, lm(input_ids=IDS).logits, atol=2e-5, rtol=1e-5)
    assert a.lm_head.weight is a.model.embed_tokens.weight  # still tied: the tiles read the embedding's tensor
    emb = a.model.embed_tokens.weight.numel()  # the tied tensor: on tiles as the head, digital as the lookup table
    assert rep.params_on_tiles + rep.params_digital == sum(p.numel() for p in lm.parameters()) + emb


def test_bert_on_ideal_equals_the_original_with_every_matrix_on_tiles():
    bert = _bert()
    a = _quiet_convert(bert, "ideal")
    assert all(isinstance(m, AnalogLinear) for m in a.modules() if isinstance(m, nn.Linear))
    assert len(list(analog_layers(a))) == 2 * 6 + 1  # q, k, v, attn out, intermediate, out per layer; pooler
    ids = IDS % 80
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    with torch.no_grad():
        y, ref = a(input_ids=ids, attention_mask=mask), bert(input_ids=ids, attention_mask=mask)
    torch.testing.assert_close(y.last_hidden_state, ref.last_hidden_state, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(y.pooler_output, ref.pooler_output, atol=2e-5, rtol=1e-5)


def test_kv_cache_generation_on_ideal_equals_the_original_and_runs_on_a_noisy_chip():
    lm = _llama()
    prompt = IDS[:1, :5]
    ref, _ = llm.generate(lm, prompt, 6)
    out, rate = llm.generate(_quiet_convert(lm, "ideal"), prompt, 6)
    assert torch.equal(out, ref) and rate > 0
    noisy = _quiet_convert(lm, "pcm-hermes")
    aimc.program(noisy, seed=0)
    aimc.drift(noisy, 86400.0)
    aimc.compensate(noisy)
    out, _ = llm.generate(noisy, prompt, 6)
    assert out.shape == (1, 11) and torch.equal(out[:, :5], prompt)


def test_hat_trains_every_projection_of_a_llama():
    lm = _llama()
    a = _quiet_convert(lm, "pcm-hermes")
    enable_hat(a, HATConfig(input_range="learned"), seed=0)
    a.train()
    loss = a(input_ids=IDS, labels=IDS).loss
    loss.backward()
    layers = list(analog_layers(a))
    assert all(m.weight.grad is not None and torch.isfinite(m.weight.grad).all() and m.weight.grad.abs().sum() > 0
               for _, m in layers)
    assert all(float(m.input_range.detach()) > 0 for _, m in layers)


def test_distillation_lowers_the_kl_to_the_teacher():
    from aimc.workloads.llm_distill import distill, self_generated_text

    lm = _llama()
    data = self_generated_text(lm, n_seq=4, length=16, seed=0)
    assert data.shape == (4, 16) and torch.equal(data, self_generated_text(lm, n_seq=4, length=16, seed=0))
    student = _quiet_convert(lm, "pcm-hermes")
    losses = distill(student, lm, data, steps=30, batch=4, lr=3e-3, hat=HATConfig(noise_scale=0.0), seed=0)
    assert not student.training and all(m.train_forward is None for _, m in analog_layers(student))
    assert sum(losses[-5:]) < 0.5 * sum(losses[:5]), losses  # the same 4 sequences each step: it must fit them


class CustomAttention(nn.Module):
    """An attention whose projections are raw parameters (no nn.Linear to convert)."""

    def __init__(self, d: int = 8):
        super().__init__()
        self.qkv = nn.Parameter(torch.randn(3 * d, d) / d**0.5)
        self.out = nn.Linear(d, d)

    def forward(self, x):
        q, k, v = (x @ self.qkv.t()).chunk(3, dim=-1)
        return self.out(torch.softmax(q @ k.transpose(-1, -2), -1) @ v)


def test_unsupported_attention_variant_stays_digital_with_a_warning_naming_it():
    net = nn.Sequential(CustomAttention(), nn.Linear(8, 2))
    with pytest.warns(UserWarning, match=r"0 \(CustomAttention: unsupported attention variant.*qkv"):
        a, rep = aimc.convert(net, "ideal", report=True)
    assert isinstance(a[0].out, AnalogLinear) and isinstance(a[1], AnalogLinear)
    assert [r.name for r in rep.digital_mvm] == ["0"]
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(a(x), net(x), atol=2e-6, rtol=1e-5)


def test_a_model_larger_than_the_chip_is_said_with_tiles_needed_and_available():
    lm = _llama()
    small = load("pcm-hermes").model_copy(update={"n_tiles": 4})
    needed = sum(m.layout.n_tiles for _, m in analog_layers(_quiet_convert(lm, "pcm-hermes")))
    assert needed > 4
    with pytest.warns(UserWarning, match=rf"needs {needed} tiles on pcm-hermes .*n_tiles = 4"):
        _, rep = aimc.convert(lm, small, report=True)
    assert any(f"needs {needed} tiles" in n for n in rep.notes)


def test_unprogrammed_layer_encodes_once_and_follows_weight_updates():
    lin = nn.Linear(16, 4)
    a = _quiet_convert(lin, "ideal")
    x = torch.randn(3, 16)
    a(x)
    cached = a._cache[1]
    a(x)
    assert a._cache[1] is cached  # no re-encoding per read
    with torch.no_grad():
        a.weight.mul_(2.0)  # an optimizer step: in place
    torch.testing.assert_close(a(x), x @ a.weight.t() + a.bias, atol=2e-6, rtol=1e-5)
    a.weight.data = torch.zeros_like(a.weight)  # a new storage
    torch.testing.assert_close(a(x), a.bias.expand(3, 4), atol=2e-6, rtol=1e-5)


def test_rtn_quantize_rounds_each_group_to_its_grid():
    torch.manual_seed(0)
    lin = nn.Linear(64, 8)
    q = llm.rtn_quantize(lin, bits=4, group=16)
    w, wq = lin.weight.detach().view(8, 4, 16), q.weight.detach().view(8, 4, 16)
    step = (w.amax(-1) - w.amin(-1)) / 15
    assert ((wq - w).abs() <= step[..., None] / 2 + 1e-6).all()  # round to nearest: half a step at most
    assert all(len(torch.unique(g)) <= 16 for g in wq.reshape(-1, 16))
    assert torch.equal(lin.bias, q.bias)


def _write_csv(path, rows):
    with bz2.open(path, "wt", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["category", "text", "movie_name"])
        w.writeheader()
        w.writerows(rows)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["fresh", "rotten", "plot"]),
                          st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)),
                max_size=8))
def test_movie_review_csv_round_trips(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("mr") / "reviews.csv.bz2"
    _write_csv(path, [{"category": c, "text": t, "movie_name": "m"} for c, t in rows])
    assert llm.movie_review_snippets(path) == [t for c, t in rows if c != "plot"]


def test_movie_review_csv_without_the_columns_or_corrupt_is_refused(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="bad.csv: expected CSV columns 'category' and 'text'"):
        llm.movie_review_snippets(bad)
    corrupt = tmp_path / "corrupt.csv.bz2"
    corrupt.write_bytes(b"not bz2 at all")
    with pytest.raises(ValueError, match="corrupt.csv.bz2: cannot read"):
        llm.movie_review_snippets(corrupt)


@pytest.mark.slow
def test_real_smollm2_on_ideal_equals_fp():
    lm, tok = llm.load_smollm2()
    ids = llm.token_ids(tok, llm.movie_review_snippets()[:20], 64)
    with torch.no_grad():
        ref = lm(input_ids=ids).logits
        y = _quiet_convert_any(lm, "ideal")(input_ids=ids).logits
    assert float((y - ref).abs().max()) < 1e-3


def _quiet_convert_any(model, chip):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 2,916 tiles on a 64-tile chip: said, not an error
        return aimc.convert(model, chip)


def test_bench_llm_cli_prints_one_json_object_and_refuses_a_bad_model(tmp_path):
    from typer.testing import CliRunner

    from aimc.cli.main import app

    _llama().save_pretrained(tmp_path / "tiny")
    runner = CliRunner()
    res = runner.invoke(app, ["bench", "llm", "--model", str(tmp_path / "tiny"), "--tokens", "3", "--prompt", "4",
                              "--repeats", "1", "--json"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    r = json.loads(lines[-1])
    assert len(lines) == 1 and {"tokens_per_s", "fp_tokens_per_s", "ratio"} <= set(r)
    assert r["ratio"] == pytest.approx(r["tokens_per_s"] / r["fp_tokens_per_s"])
    assert r["tiles_needed"] == 2 * 7 + 1 and r["memory_ratio"] > 1
    res = runner.invoke(app, ["bench", "llm", "--model", str(tmp_path / "nothing"), "--json"])
    assert res.exit_code == 2 and res.stderr.strip().startswith("error: ") and "nothing" in res.stderr
