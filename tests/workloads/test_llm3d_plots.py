"""llm3d figures (batch sweep, tier map), the density file and per-layer routing from a real gate."""
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aimc.chips import load
from aimc.cli.main import app
from aimc.workloads.llm3d import LLMConfig, Router, load_model, lm_density, map_model
from aimc.workloads.llm3d.api import load_density, sweep_batch, tier_map
from aimc.workloads.llm3d.mapping import ROLES

pytest.importorskip("matplotlib")
from aimc.report.llm3d_plot import plot_batch_sweep, plot_tier_map  # noqa: E402

TOP2 = LLMConfig(name="top2", d_model=512, n_heads=4, d_ff=1024, n_layers=2, vocab_size=512, n_experts=4, top_k=2)


def test_batch_sweep_plot_draws_the_json_numbers():
    r = sweep_batch(["dense-small", "moe-small"], batches=(1, 3), baseline="gpu-h100", prompt=2, generate=2)
    fig = plot_batch_sweep(r)
    tput, energy = fig.axes
    lines = {ln.get_label(): ln for ln in tput.lines}
    elines = {ln.get_label(): ln for ln in energy.lines}
    for name, row in r["models"].items():
        for who, src in ((f"{name} on 3d-nvm", row), (f"{name} on gpu-h100", row["baseline"])):
            assert lines[who].get_xdata().tolist() == [1.0, 3.0]
            assert lines[who].get_ydata().tolist() == src["tokens_per_s"]
            np.testing.assert_allclose(elines[who].get_ydata(), np.asarray(src["J_per_token"]) * 1e3, rtol=1e-12)
    assert len(tput.lines) == len(energy.lines) == 4


def test_tier_map_counts_every_tier_once_and_the_plot_shows_it():
    m = tier_map("threedsim-moe", mapping="moe_separated", pos_embedding_rows=8)
    grid = m["grid"]
    assert (np.count_nonzero(grid, axis=0) == m["tiers_used"]).all()
    assert np.count_nonzero(grid) == sum(m["tiers_used"])
    # 64 experts x 10 layers x (16 FFN-in + 16 FFN-out blocks), each one tier; a router is 1024 x 64: 2 blocks
    assert (grid == ROLES.index("expert FFN in")).sum() == (grid == ROLES.index("expert FFN out")).sum() == 64 * 10 * 16
    assert (grid == ROLES.index("router")).sum() == 10 * 2 and (grid == ROLES.index("dense FFN in")).sum() == 0
    shown = plot_tier_map(m, max_tiers=300).axes[0].images[0].get_array()
    assert np.array_equal(np.asarray(shown), grid[:300])


def test_cli_plots_keep_existing_files_unless_forced(tmp_path):
    run = CliRunner().invoke
    png = tmp_path / "figs" / "tiers.png"
    args = ["llm3d", "simulate", "--model", "dense-small", "--prompt", "2", "--generate", "2", "--plot", str(png)]
    out = run(app, args + ["--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["plot"] == str(png) and png.read_bytes()[:4] == b"\x89PNG"
    out = run(app, args)
    assert out.exit_code == 2 and "exists" in out.output and "--force" in out.output
    assert run(app, args + ["--force"]).exit_code == 0
    sweep = tmp_path / "sweep.png"
    out = run(app, ["llm3d", "sweep-batch", "--model", "dense-small", "--batch", "1", "--batch", "2", "--prompt",
                    "2", "--generate", "2", "--plot", str(sweep), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["batches"] == [1, 2] and sweep.read_bytes()[:4] == b"\x89PNG"


def test_real_gate_density_per_layer_routes_and_places():
    from aimc.workloads.moe_lm import TinyLM

    lm = TinyLM(vocab=30, d=16, n_layers=2, n_heads=2, hidden=16, context=8, n_experts=4, top_k=2, seed=0)
    ids = torch.randint(0, 30, (20, 8), generator=torch.Generator().manual_seed(1))
    p = lm_density(lm, ids).numpy()  # one forward of all 20 windows: last_index holds every choice
    for k in range(2):
        hand = np.zeros((4, 4))
        for i, j in lm.blocks[k].ffn.last_index.tolist():
            hand[i, j] += 1
            hand[j, i] += 1
        assert hand.sum() == 2 * 20 * 8
        np.testing.assert_allclose(p[k], hand / hand.sum(), rtol=1e-12)
    dens = np.zeros((2, 4, 4))
    dens[0, 0, 2] = dens[0, 2, 0] = 1.0  # layer 0 always takes experts 0 and 2, layer 1 experts 1 and 3
    dens[1, 1, 3] = dens[1, 3, 1] = 1.0
    r = Router(4, 2, density=dens, seed=0)
    assert {tuple(sorted(r(1, t, 0))) for t in range(20)} == {(0, 2)}
    assert {tuple(sorted(r(1, t, 1))) for t in range(20)} == {(1, 3)}
    # 8 tiles, 4 blocks per expert: a sweep over the tiles holds 2 experts side by side. In order, experts
    # 0, 1 share a sweep and 2 lands on 0's tiles; top2 puts each layer's co-activated pair in one sweep.
    chip = load("3d-nvm").model_copy(update={"n_tiles": 8})
    for strategy, apart in (("greedy_in_order", False), ("top2", True)):
        place = map_model(TOP2, chip, strategy, density=dens)
        for layer, (a, b) in ((0, (0, 2)), (1, (1, 3))):
            tiles = [{int(t) for w in ("ffn1", "ffn2") for t in place.blocks[f"l{layer}.e{e}.{w}"][0].ravel()}
                     for e in (a, b)]
            assert (not tiles[0] & tiles[1]) == apart, (strategy, layer, tiles)
    with pytest.raises(ValueError, match="density for top-2 of 4 experts must be"):
        Router(4, 2, density=np.ones((3, 3)))


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.recursive(st.one_of(st.floats(allow_nan=True), st.integers(-2, 3), st.text(max_size=3)),
                              lambda c: st.lists(c, max_size=4), max_leaves=30),
                 st.dictionaries(st.sampled_from(["density", "x"]), st.lists(st.floats(-1, 2), max_size=5))))
def test_density_files_load_or_fail_cleanly(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("d") / "dens.json"
    p.write_text(json.dumps(data))
    try:
        arr = load_density(p)
    except ValueError as e:
        assert str(p) in str(e)
    else:
        assert arr.ndim in (1, 2, 3) and np.isfinite(arr).all() and (arr >= 0).all() and arr.sum() > 0


def test_density_file_of_wrong_size_is_refused_by_name(tmp_path):
    p = tmp_path / "d.json"
    p.write_text(json.dumps({"density": np.full((3, 8, 8), 1.0).tolist()}))
    out = CliRunner().invoke(app, ["llm3d", "simulate", "--model", "moe-small", "--density", str(p), "--prompt", "1",
                                   "--generate", "1"])
    assert out.exit_code == 2 and "density" in out.output
    assert load_model("moe-small").n_layers == 8
