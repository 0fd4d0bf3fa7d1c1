"""`aimc train` writes a checkpoint that `aimc demo --checkpoint` evaluates."""
import json

from typer.testing import CliRunner

from aimc.cli.main import app
from aimc.train.fit import load_checkpoint

runner = CliRunner()


def test_train_then_demo_checkpoint(tmp_path):
    ckpt = tmp_path / "m.safetensors"
    res = runner.invoke(app, ["train", "--epochs", "1", "--out", str(ckpt)])
    assert res.exit_code == 0, res.output
    state, meta = load_checkpoint(ckpt)
    assert meta["method"] == "hat" and meta["dataset"] == "digits" and meta["hat"]["noise_scale"] == 1.0
    again = runner.invoke(app, ["train", "--epochs", "1", "--out", str(ckpt)])
    assert again.exit_code == 2 and "exists" in again.output  # nothing saved is overwritten
    res = runner.invoke(app, ["demo", "--checkpoint", str(ckpt), "--chips", "1", "--json",
                              "--out", str(tmp_path / "p.png")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["method"] == "hat" and out["fp_accuracy"] == meta["digital_test_accuracy"]


def test_train_rejects_bad_method_and_dataset(tmp_path):
    res = runner.invoke(app, ["train", "--method", "magic", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "--method" in res.output
    res = runner.invoke(app, ["train", "--dataset", "cifar", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "cifar" in res.output
