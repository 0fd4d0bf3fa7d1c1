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
    assert meta["method"] == "hat" and meta["dataset"] == "digits" and meta["hat"]["noise_scale"] == 2.0
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


def test_train_onchip_writes_an_mlp_checkpoint(tmp_path):
    import torch

    from aimc.workloads.data import load_dataset
    from aimc.train.onchip import load_mlp

    ckpt = tmp_path / "tt.safetensors"
    res = runner.invoke(app, ["train", "--method", "tiki-taka-v2", "--chip", "ecram", "--epochs", "2",
                              "--hidden", "16", "--out", str(ckpt)])
    assert res.exit_code == 0, res.output
    net, meta = load_mlp(ckpt)
    assert meta["method"] == "tiki-taka-v2" and meta["chip"] == "ecram" and meta["model"] == "mlp"
    assert meta["onchip"]["device"]["kind"] == "linear_step" and len(meta["history"]) == 2
    _, _, x_te, y_te = load_dataset("digits", seed=0)
    with torch.no_grad():
        acc = float((net(x_te).argmax(1) == y_te).float().mean())
    assert abs(acc - meta["test_accuracy"]) < 1e-6 and acc > 0.3


def test_train_onchip_rejects_a_chip_without_pulsed_device(tmp_path):
    res = runner.invoke(app, ["train", "--method", "analog-sgd", "--chip", "pcm-hermes", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "pcm-hermes" in res.output and "pulsed" in res.output
    assert "rram-1t1r" in res.output  # the presets that have a pulsed section


def test_train_onchip_on_a_yaml_chip(tmp_path):
    import yaml

    import aimc

    d = aimc.chips.load("ecram").to_dict()
    d["name"] = "lab-ecram"
    d["pulsed"]["dw_min"] = 0.004  # a coarser device of one's own
    chip = tmp_path / "lab.yaml"
    chip.write_text(yaml.safe_dump(d))
    ckpt = tmp_path / "m.safetensors"
    res = runner.invoke(app, ["train", "--method", "analog-sgd", "--chip", str(chip), "--epochs", "1",
                              "--hidden", "8", "--out", str(ckpt)])
    assert res.exit_code == 0, res.output
    meta = load_checkpoint(ckpt)[1]
    assert meta["onchip"]["chip"] == "lab-ecram" and meta["onchip"]["device"]["dw_min"] == 0.004


def test_train_hybrid_saves_the_deployed_chip(tmp_path):
    import torch

    import aimc
    from aimc.workloads.models import digits_cnn
    from aimc.train.hybrid import add_adapters

    out = tmp_path / "chip.safetensors"
    res = runner.invoke(app, ["train", "--method", "hybrid", "--epochs", "1", "--n-calib", "300", "--rank", "2",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "after on-device fine-tuning" in res.output
    model = add_adapters(aimc.convert(digits_cnn(seed=0), "pcm-hermes"), rank=2)
    aimc.nn.load_state(model, out)
    assert all(m.is_programmed for _, m in aimc.nn.analog_layers(model))
    assert float(model[0].up.weight.detach().abs().sum()) > 0
    assert torch.isfinite(model(torch.zeros(2, 1, 8, 8))).all()
