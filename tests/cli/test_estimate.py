"""aimc estimate: JSON output, plot, checkpoint, and one-line errors for bad input."""
import json

from typer.testing import CliRunner

from aimc.cli.main import app

runner = CliRunner()


def test_json_has_the_contract_keys():
    res = runner.invoke(app, ["estimate", "mvm:256x256", "--chip", "pcm-hermes", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    for key in ("energy_pJ", "latency_ns", "tops", "tops_per_w", "tops_per_mm2", "area_mm2", "breakdown", "layers"):
        assert key in d
    assert 50 < d["tops"] < 80


def test_table_and_plot(tmp_path):
    out = tmp_path / "cost.png"
    res = runner.invoke(app, ["estimate", "digits-cnn", "--chip", "isaac", "--plot", str(out)])
    assert res.exit_code == 0, res.output
    assert out.exists() and "TOPS/W" in res.stdout


def test_checkpoint(tmp_path):
    from aimc.models import digits_cnn
    from aimc.train.fit import save_checkpoint

    path = tmp_path / "m.safetensors"
    save_checkpoint(digits_cnn(seed=1), path, {"dataset": "digits", "method": "digital"})
    res = runner.invoke(app, ["estimate", str(path), "--json"])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)["layers"]) == 3


def test_bad_input_names_the_field():
    for args, needle in ((["estimate", "mvm:0x4"], "mvm:ROWSxCOLS"), (["estimate", "nope"], "unknown MODEL"),
                         (["estimate", "mvm:8x8", "--chip", "nochip"], "unknown chip"),
                         (["estimate", "mvm:8x8", "--batch", "0"], "--batch")):
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert needle in res.stderr
