"""Files in and out of the command line: a bad checkpoint ends in one line and exit code
2; reruns never fail and never destroy an earlier result (one output policy)."""
import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import aimc
from aimc.workloads.models import digits_cnn

README = Path(__file__).resolve().parents[2] / "README.md"




@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A trained-weights checkpoint of the digits CNN (untrained weights: only files matter here)."""
    return aimc.nn.save_state(digits_cnn(seed=1), tmp_path_factory.mktemp("w") / "w.safetensors",
                              model_spec={"name": "digits-cnn"}, run={"dataset": "digits", "method": "digital"})


def _bad_file(kind: str, good: Path, d: Path) -> Path:
    bad = d / f"{kind}.safetensors"
    raw = good.read_bytes()
    if kind == "empty":
        bad.write_bytes(b"")
    elif kind == "truncated":
        bad.write_bytes(raw[: len(raw) - 100])
    elif kind == "corrupt":
        bad.write_bytes(b"\x07" * 16 + raw[16:])
    elif kind == "directory":
        bad.mkdir()
    elif kind == "nan":
        ck = aimc.nn.read_checkpoint(good)
        w = ck.state["3.weight"].clone()
        w[0, 0, 0, 0] = float("nan")
        save_file({**ck.state, "3.weight": w}, str(bad), metadata={"aimc": json.dumps(
            {"_version": 1, "kind": "weights", "chips": {}, "model": ck.model, "run": ck.run})})
    elif kind == "foreign":
        save_file({"x": torch.ones(2)}, str(bad))
    return bad


@pytest.mark.parametrize("kind, reason", [
    ("empty", "is empty"), ("truncated", "truncated or corrupt"), ("corrupt", "truncated or corrupt"),
    ("directory", "is a directory"), ("nan", "tensor '3.weight' holds NaN"), ("foreign", "not an aimc checkpoint"),
    ("missing", "no such checkpoint"),
])
def test_bad_checkpoint_is_one_line_naming_file_and_reason(cli, weights, tmp_path, kind, reason):
    bad = tmp_path / "missing.safetensors" if kind == "missing" else _bad_file(kind, weights, tmp_path)
    for args in (["demo", "--checkpoint", str(bad), "--out", str(tmp_path / "p.png")],
                 ["estimate", str(bad)],
                 ["train", "--init", str(bad), "--out", str(tmp_path / "m.safetensors")]):
        line = cli.error(args)
        assert str(bad) in line and reason in line, (args, line)
    assert not (tmp_path / "p.png").exists() and not (tmp_path / "m.safetensors").exists()


def test_demo_twice_in_the_same_directory_keeps_both_results(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["demo", "--chips", "1", "--max-test", "60"]
    first = cli.ok(args)
    assert "plot saved to aimc-demo.png" in first.stdout
    png = (tmp_path / "aimc-demo.png").read_bytes()
    second = cli.ok([*args, "--json"])
    assert json.loads(second.stdout)["plot"] == "aimc-demo-1.png"
    assert (tmp_path / "aimc-demo.png").read_bytes() == png and (tmp_path / "aimc-demo-1.png").exists()
    line = cli.error([*args, "--out", "aimc-demo.png"])  # an explicit existing file: only with --force
    assert "aimc-demo.png exists; pass --force" in line and (tmp_path / "aimc-demo.png").read_bytes() == png


def test_train_twice_numbers_its_default_checkpoint(cli, weights, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["train", "--method", "digital", "--init", str(weights)]
    assert "saved aimc-model.safetensors" in cli.ok(args).stdout
    assert "saved aimc-model-1.safetensors" in cli.ok(args).stdout
    assert cli.ok([*args, "--out", "runs/a/m.safetensors"]) and (tmp_path / "runs/a/m.safetensors").is_file()
    assert "is a directory" in cli.error([*args, "--out", "runs"])
    assert "cifar" in cli.error([*args, "--dataset", "cifar", "--out", "new/m.safetensors"])
    assert not (tmp_path / "new").exists()  # a failed command leaves no empty folder


def test_estimate_plot_follows_the_same_policy(cli, tmp_path):
    plot = tmp_path / "new" / "cost.png"  # a missing directory is created
    cli.ok(["estimate", "mvm:64x64", "--plot", str(plot)])
    first = plot.read_bytes()
    line = cli.error(["estimate", "mvm:64x64", "--plot", str(plot)])
    assert "cost.png exists; pass --force to overwrite it or --plot" in line and plot.read_bytes() == first
    cli.ok(["estimate", "mvm:128x64", "--plot", str(plot), "--force"])
    assert plot.read_bytes() != first
    assert "is a directory" in cli.error(["estimate", "mvm:64x64", "--plot", str(tmp_path)])


def test_readme_snippet_runs_twice(tmp_path, monkeypatch):
    text = README.read_text()
    section = text[text.index("## What it is"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "save_state" in code
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        exec(compile(code, "README.md", "exec"), {})
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert saved == ["chip-1.safetensors", "chip.safetensors"]
    twin = aimc.convert(torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                            torch.nn.Linear(8 * 6 * 6, 10)), "pcm-hermes")
    assert aimc.nn.load_state(twin, tmp_path / "chip.safetensors").kind == "programmed"
