"""`aimc compile`, `aimc plan show`, `aimc run`, `aimc estimate plan.json`: the numbers
agree, user errors are one line naming the field, and no partial plan is left behind."""
from __future__ import annotations

import json

import pytest


def test_estimate_prices_a_plan_as_the_compiler_did(cli, tmp_path):
    plan = tmp_path / "p.json"
    cli.ok(["compile", "encoder:64,4,128,2", "--chip", "pcm-hermes", "-o", str(plan)])
    d = json.loads(plan.read_text())
    est = json.loads(cli.ok(["estimate", str(plan), "--json"]).stdout)
    assert est["energy_pJ"] == d["expected"]["energy_pJ"] and est["latency_ns"] == d["expected"]["latency_ns"]
    png = tmp_path / "map.png"
    shown = cli.ok(["plan", "show", str(plan), "--map", str(png)]).stdout
    assert "blocks.0.q" in shown and "round 0:" in shown
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_multiplex_shows_the_reprogramming(cli, tmp_path):
    plan = tmp_path / "p.json"
    msg = cli.error(["compile", "mvm:4096x4096", "--chip", "pcm-hermes", "-o", str(plan)])
    assert "needs 256 tiles of 256x256, chip 'pcm-hermes' has 64" in msg and "--on-overflow multiplex" in msg
    assert not plan.exists()  # nothing written on error
    out = cli.ok(["compile", "mvm:4096x4096", "--on-overflow", "multiplex", "-o", str(plan)]).stdout
    assert "in 4 round(s)" in out and "reprogramming" in out and "per inference" in out
    d = json.loads(plan.read_text())
    est = json.loads(cli.ok(["estimate", str(plan), "--json"]).stdout)
    assert est["rounds"] == 4 and est["reprogram_energy_pJ"] == d["expected"]["reprogram_energy_pJ"] > 0


def test_existing_output_is_kept_without_force(cli, tmp_path):
    plan = tmp_path / "p.json"
    plan.write_text("keep me")
    assert "exists" in cli.error(["compile", "mvm:256x256", "-o", str(plan)])
    assert plan.read_text() == "keep me"
    cli.ok(["compile", "mvm:256x256", "-o", str(plan), "--force"])
    assert json.loads(plan.read_text())["_version"] == 1


def test_hand_edited_plan_is_refused_naming_the_field(cli, tmp_path):
    plan = tmp_path / "p.json"
    cli.ok(["compile", "mvm:512x512", "-o", str(plan)])
    d = json.loads(plan.read_text())
    d["placement"]["tile"][1] = 0  # two full tiles' blocks on one tile
    plan.write_text(json.dumps(d))
    for cmd in (["plan", "show", str(plan)], ["estimate", str(plan)], ["run", str(plan)]):
        msg = cli.error(cmd)
        assert "field 'placement.row[1]'" in msg and "disjoint rows and columns" in msg, msg


@pytest.mark.parametrize("args, words", [
    (["compile", "mvm:64x64", "--policy", "fastest"], "unknown policy 'fastest'"),
    (["compile", "mvm:64x64", "--policy", "energy"], "--latency-us"),
    (["compile", "mvm:64x64", "--policy", "sensitivity", "--budget", "1%"], "calibration data"),
    (["compile", "mvm:64x64", "--budget", "lots"], "--budget must be like 1%"),
    (["compile", "missing.onnx"], "ONNX file missing.onnx not found"),
    (["compile", "mvm:64x64", "--on-overflow", "spill"], "on_overflow must be one of fail, multiplex"),
])
def test_bad_compile_input(cli, tmp_path, args, words):
    assert words in cli.error([*args, "-o", str(tmp_path / "p.json")])
    assert not (tmp_path / "p.json").exists()


def test_run_of_a_shape_only_plan_says_why(cli, tmp_path):
    plan = tmp_path / "p.json"
    cli.ok(["compile", "mvm:64x64", "-o", str(plan)])
    assert "no weights or no data" in cli.error(["run", str(plan)])


def test_run_on_the_ideal_chip_is_floating_point(cli, tmp_path):
    plan = tmp_path / "p.json"
    cli.ok(["compile", "digits-cnn", "--chip", "ideal", "-o", str(plan)])
    out = json.loads(cli.ok(["run", str(plan), "--seeds", "2", "--t", "1d", "--json"]).stdout)
    assert out["rows"][0]["per_chip"] == [out["fp"], out["fp"]]  # exact reads: FP to the last sample


def test_an_onnx_model_compiles_with_its_host_ops(cli, tmp_path):
    import torch

    from aimc.workloads.models import digits_cnn

    onnx_file = tmp_path / "cnn.onnx"
    torch.onnx.export(digits_cnn(seed=0).eval(), (torch.rand(1, 1, 8, 8),), str(onnx_file), dynamo=False)
    plan = tmp_path / "p.json"
    cli.ok(["compile", str(onnx_file), "--chip", "pcm-hermes", "-o", str(plan)])
    d = json.loads(plan.read_text())
    assert [lp["name"] for lp in d["layers"]] == ["0", "3", "7"]  # the module paths, through ONNX
    # ReLU outputs and max-pool inputs: 16 x 8 x 8 (first block) + 32 x 4 x 4 (second)
    assert d["host_ops"] == {"relu": 16 * 64 + 32 * 16, "maxpool": 16 * 64 + 32 * 16}
    est = json.loads(cli.ok(["estimate", str(plan), "--json"]).stdout)
    assert est["energy_pJ"] == d["expected"]["energy_pJ"] and "host ops" in [x["name"] for x in est["layers"]]
    assert [s["substrate"] for s in d["schedule"]["stages"]][-1] == "digital"


def test_a_malformed_onnx_file_is_one_line_and_no_plan(cli, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf")
    msg = cli.error(["compile", str(bad), "-o", str(tmp_path / "p.json")])
    assert "bad.onnx" in msg and not (tmp_path / "p.json").exists()


def test_pytorch_and_its_onnx_export_give_the_same_plan_and_outputs(cli, tmp_path):
    """Issue 11's first row: `aimc export` + `aimc compile X.onnx --dataset digits` gives the
    plan of `aimc compile digits-cnn` (all but the model's name), and on the ideal chip
    `aimc run` of either is floating point, sample for sample."""
    onnx_file, p_torch, p_onnx = tmp_path / "cnn.onnx", tmp_path / "t.json", tmp_path / "o.json"
    cli.ok(["export", "digits-cnn", "-o", str(onnx_file)])
    assert "exists" in cli.error(["export", "digits-cnn", "-o", str(onnx_file)])  # kept without --force
    cli.ok(["compile", "digits-cnn", "--chip", "ideal", "-o", str(p_torch)])
    cli.ok(["compile", str(onnx_file), "--dataset", "digits", "--chip", "ideal", "-o", str(p_onnx)])
    a, b = json.loads(p_torch.read_text()), json.loads(p_onnx.read_text())
    assert a["model"].pop("spec") == "digits-cnn" and b["model"].pop("spec") == str(onnx_file)
    assert a == b
    runs = [json.loads(cli.ok(["run", str(p), "--seeds", "2", "--t", "1d", "--json"]).stdout) for p in (p_torch, p_onnx)]
    assert runs[0]["fp"] == runs[1]["fp"] > 0.9
    assert runs[1]["rows"][0]["per_chip"] == [runs[0]["fp"]] * 2


def test_dataset_is_for_onnx_files_and_must_fit_the_input(cli, tmp_path):
    assert "--dataset is for ONNX files" in cli.error(["compile", "digits-cnn", "--dataset", "digits",
                                                       "-o", str(tmp_path / "p.json")])
    import torch

    onnx_file = tmp_path / "mlp.onnx"
    torch.onnx.export(torch.nn.Linear(5, 3).eval(), (torch.rand(1, 5),), str(onnx_file), dynamo=False)
    msg = cli.error(["compile", str(onnx_file), "--dataset", "digits", "-o", str(tmp_path / "p.json")])
    assert "shape (5,) per sample" in msg and "(1, 8, 8)" in msg
    assert "not known" in cli.error(["compile", str(onnx_file), "--dataset", "cifar", "-o", str(tmp_path / "p.json")])
    assert not (tmp_path / "p.json").exists()
