"""``aimc bench train --name llm-hat`` on a tiny Llama (SmolLM2 itself is the default,
too heavy for the suite): the row's keys, the FP student sharing the analog weights, the
teacher left unchanged, and a clear error for an unknown row."""

import pytest
import torch
from typer.testing import CliRunner

import aimc
from aimc.cli.main import app
from aimc.experiments.bench_llm_hat import bench_llm_hat, fp_student
from aimc.nn.convert import analog_layers

transformers = pytest.importorskip("transformers")


def _tiny_llama():
    cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                   num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(cfg).eval()


def test_fp_student_trains_the_analog_weights_and_shares_the_rest():
    lm = _tiny_llama()
    student = aimc.convert(lm, "ideal")
    fp = fp_student(lm, student)
    analog = dict(analog_layers(student))
    linears = {n: m for n, m in fp.named_modules() if isinstance(m, torch.nn.Linear)}
    assert linears.keys() == analog.keys() and "lm_head" in linears
    assert all(m.weight is analog[n].weight for n, m in linears.items())
    assert fp.model.embed_tokens.weight is lm.model.embed_tokens.weight  # frozen teacher tensor, not copied
    assert fp.lm_head.weight is not fp.model.embed_tokens.weight  # untied, as convert unties it
    x = torch.randint(0, 64, (1, 6))
    with torch.no_grad():
        torch.testing.assert_close(fp(input_ids=x).logits, lm(input_ids=x).logits)


def test_bench_llm_hat_row():
    lm = _tiny_llama()
    before = {n: (p.detach().clone(), p.requires_grad) for n, p in lm.named_parameters()}
    r = bench_llm_hat(lm, batch=2, seq=8, repeats=1, warmup=0)
    assert r["name"] == "llm-hat" and r["tokens"] == 16 and r["layers"] == 8  # q k v o gate up down + lm_head
    assert r["ms"] > 0 and r["fp_ms"] > 0 and r["ratio"] == pytest.approx(r["ms"] / r["fp_ms"], rel=2e-3)  # ms to 1 µs
    assert r["params"] == sum(m.weight.numel() for m in lm.modules() if isinstance(m, torch.nn.Linear))
    for n, p in lm.named_parameters():  # the teacher is not trained and its flags are restored
        assert torch.equal(p.detach(), before[n][0]) and p.requires_grad == before[n][1], n
    with pytest.raises(ValueError, match="seq >= 2"):
        bench_llm_hat(lm, seq=1)


def test_bench_train_cli_rejects_unknown_rows():
    res = CliRunner().invoke(app, ["bench", "train", "--name", "llm-hats", "--json"])
    assert res.exit_code == 2 and "llm-hat" in res.output
