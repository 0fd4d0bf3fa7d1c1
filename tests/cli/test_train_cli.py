"""Every checkpoint `aimc train` writes is read by every command that takes a checkpoint
(`aimc demo --checkpoint`, `aimc estimate FILE`, `aimc train --init`), or refused with
the reason; files of the previous version too.

The writers run once per module: one digital training (the only full one), HAT and hybrid
fine-tuning started from it with ``--init``, one epoch of on-chip training.
"""
import json

import pytest
import torch
from safetensors.torch import save_file

import aimc
from aimc.nn import read_checkpoint





@pytest.fixture(scope="module")
def written(cli, tmp_path_factory):
    d = tmp_path_factory.mktemp("written")
    files = {name: d / f"{name}.safetensors" for name in ("digital", "hat", "hybrid", "onchip", "legacy")}
    cli.ok(["train", "--method", "digital", "--out", str(files["digital"])])
    cli.ok(["train", "--init", str(files["digital"]), "--epochs", "1", "--out", str(files["hat"])])
    res = cli.ok(["train", "--method", "hybrid", "--init", str(files["digital"]), "--epochs", "1", "--n-calib", "300",
               "--rank", "2", "--out", str(files["hybrid"])])
    assert "after on-device fine-tuning" in res.output
    cli.ok(["train", "--method", "tiki-taka-v2", "--chip", "ecram", "--epochs", "2", "--hidden", "16",
         "--out", str(files["onchip"])])
    # a checkpoint as `aimc train` wrote it before the one format (metadata 'aimc_checkpoint')
    ck = read_checkpoint(files["digital"])
    save_file(ck.state, str(files["legacy"]), metadata={"aimc_checkpoint": json.dumps(
        {"dataset": "digits", "method": "digital", "chip": "pcm-hermes", "seed": 0})})
    return files


def test_headers_say_what_each_file_holds(written):
    hat = read_checkpoint(written["hat"])
    assert hat.kind == "weights" and hat.model == {"name": "digits-cnn"} and hat.chips["0"]["name"] == "pcm-hermes"
    assert hat.run["method"] == "hat" and hat.run["dataset"] == "digits" and hat.run["hat"]["noise_scale"] == 2.0
    hy = read_checkpoint(written["hybrid"])
    assert hy.kind == "programmed" and hy.model == {"name": "digits-cnn", "adapter_rank": 2}
    assert hy.run["chip_seed"] == 0 and hy.run["deploy_time_s"] == 2_592_000.0
    oc = read_checkpoint(written["onchip"])
    assert oc.kind == "weights" and oc.model == {"name": "mlp", "n_in": 64, "hidden": [16], "n_out": 10}
    assert oc.chip().name == "ecram" and oc.run["onchip"]["device"]["kind"] == "linear_step"
    assert len(oc.run["history"]) == 2 and read_checkpoint(written["digital"]).chips == {}


@pytest.mark.parametrize("writer", ["digital", "hat", "hybrid", "onchip", "legacy"])
def test_demo_evaluates_every_checkpoint(cli, written, writer, tmp_path):
    res = cli.ok(["demo", "--checkpoint", str(written[writer]), "--chips", "1", "--max-test", "90", "--json",
               "--out", str(tmp_path / "p.png")])
    out = json.loads(res.stdout)
    ck = read_checkpoint(written[writer])
    assert out["method"] == ck.run["method"] and out["n_test"] == 90 and (tmp_path / "p.png").exists()
    assert out["chip"] == {"hybrid": "pcm-hermes", "onchip": "ecram", "hat": "pcm-hermes"}.get(writer, "pcm-hermes")
    assert out["programmed"] == (writer == "hybrid") and len(out["rows"]) == 5
    assert all(0.0 <= r["gdc_mean"] <= 1.0 for r in out["rows"])


def test_demo_of_trained_weights_matches_their_recorded_accuracy(cli, written, tmp_path):
    ck = read_checkpoint(written["hat"])
    out = json.loads(cli.ok(["demo", "--checkpoint", str(written["hat"]), "--chips", "1", "--json",
                          "--out", str(tmp_path / "p.png")]).stdout)
    assert out["fp_accuracy"] == ck.run["digital_test_accuracy"]


def test_demo_evaluates_the_hybrid_chip_as_saved(cli, written, tmp_path):
    from aimc.train.hybrid import add_adapters
    from aimc.workloads.models import digits_cnn

    model = add_adapters(aimc.convert(digits_cnn(seed=0), "pcm-hermes"), rank=2)
    aimc.nn.load_state(model, written["hybrid"])
    assert all(m.is_programmed for _, m in aimc.nn.analog_layers(model))
    assert float(model[0].up.weight.detach().abs().sum()) > 0  # the trained adapter
    line = cli.error(["demo", "--checkpoint", str(written["hybrid"]), "--chips", "3", "--out", str(tmp_path / "p.png")])
    assert "holds one programmed chip" in line
    line = cli.error(["demo", "--checkpoint", str(written["hybrid"]), "--chip", "ideal",
                     "--out", str(tmp_path / "p.png")])
    assert "programmed on 'pcm-hermes', not 'ideal'" in line


def test_onchip_checkpoint_loads_as_a_plain_mlp(written):
    from aimc.train.onchip import load_mlp
    from aimc.workloads.data import load_dataset

    net, run = load_mlp(written["onchip"])
    _, _, x_te, y_te = load_dataset("digits", seed=0)
    with torch.no_grad():
        acc = float((net(x_te).argmax(1) == y_te).float().mean())
    assert abs(acc - run["test_accuracy"]) < 1e-6 and acc > 0.3
    with pytest.raises(ValueError, match="holds no MLP"):
        load_mlp(written["hat"])


@pytest.mark.parametrize("writer", ["digital", "hat", "hybrid", "onchip", "legacy"])
def test_estimate_prices_every_checkpoint(cli, written, writer):
    layers = json.loads(cli.ok(["estimate", str(written[writer]), "--json"]).stdout)["layers"]
    assert len(layers) == (2 if writer == "onchip" else 3)


@pytest.mark.parametrize("writer, refusal", [
    ("digital", None), ("hat", None), ("legacy", None),
    ("hybrid", "holds a programmed chip (aimc train --method hybrid), not trained weights"),
    ("onchip", "holds an MLP (tiki-taka-v2 training)"),
])
def test_train_init_takes_trained_weights(cli, written, writer, refusal, tmp_path):
    out = tmp_path / "again.safetensors"
    args = ["train", "--method", "digital", "--init", str(written[writer]), "--out", str(out)]
    if refusal is None:
        cli.ok(args)
        assert torch.equal(read_checkpoint(out).state["0.weight"], read_checkpoint(written[writer]).state["0.weight"])
    else:
        assert refusal in cli.error(args) and not out.exists()


def test_train_refuses_what_it_cannot_do(cli, written, tmp_path):
    assert "--method" in cli.error(["train", "--method", "magic", "--out", str(tmp_path / "x")])
    assert "cifar" in cli.error(["train", "--dataset", "cifar", "--out", str(tmp_path / "x")])
    line = cli.error(["train", "--method", "analog-sgd", "--chip", "pcm-hermes", "--out", str(tmp_path / "x")])
    assert "pcm-hermes" in line and "pulsed" in line and "rram-1t1r" in line  # the presets with a pulsed section
    assert "--init does not apply" in cli.error(["train", "--method", "analog-sgd", "--init", str(written["digital"])])
    line = cli.error(["train", "--dataset", "fashion-mnist", "--init", str(written["digital"]),
                     "--out", str(tmp_path / "x")])
    assert "trained on 'digits', not 'fashion-mnist'" in line
    before = written["hat"].read_bytes()
    line = cli.error(["train", "--method", "digital", "--init", str(written["digital"]), "--out", str(written["hat"])])
    assert "exists; pass --force" in line and written["hat"].read_bytes() == before


def test_train_onchip_on_a_yaml_chip(cli, tmp_path):
    import yaml

    d = aimc.chips.load("ecram").to_dict()
    d["name"] = "lab-ecram"
    d["pulsed"]["dw_min"] = 0.004  # a coarser device of one's own
    chip = tmp_path / "lab.yaml"
    chip.write_text(yaml.safe_dump(d))
    ckpt = tmp_path / "m.safetensors"
    cli.ok(["train", "--method", "analog-sgd", "--chip", str(chip), "--epochs", "1", "--hidden", "8",
            "--out", str(ckpt)])
    ck = read_checkpoint(ckpt)
    assert ck.run["onchip"]["chip"] == "lab-ecram" and ck.run["onchip"]["device"]["dw_min"] == 0.004
    assert ck.chip().name == "lab-ecram" and ck.chip().pulsed.dw_min == 0.004  # the chip travels with the weights
