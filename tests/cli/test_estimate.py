"""aimc estimate: JSON output, plot, checkpoint, every model with every baseline, --phases, and
one-line errors for bad input."""
import json

import pytest
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
    from aimc.workloads.models import digits_cnn
    from aimc.nn import save_state

    path = save_state(digits_cnn(seed=1), tmp_path / "m.safetensors", model_spec={"name": "digits-cnn"},
                      run={"dataset": "digits", "method": "digital"})
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


_MODELS = ["digits-cnn", "fashion-cnn", "mvm:256x256", "transformer"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from aimc.workloads.models import digits_cnn
    from aimc.nn import save_state

    path = save_state(digits_cnn(seed=1), tmp_path_factory.mktemp("ckpt") / "m.safetensors",
                      model_spec={"name": "digits-cnn"}, run={"dataset": "digits", "method": "digital"})
    return str(path)


@pytest.mark.parametrize("baseline", ["gpu-a100", "cpu-xeon", "dimc-22nm"])
def test_every_model_with_every_baseline(baseline, checkpoint):
    """`aimc estimate MODEL --chip pcm-hermes --baseline NAME --json` for every built-in MODEL."""
    for model in [*_MODELS, checkpoint]:
        res = runner.invoke(app, ["estimate", model, "--chip", "pcm-hermes", "--baseline", baseline, "--json"])
        assert res.exit_code == 0, (model, res.output)
        d = json.loads(res.stdout)
        b = d["baseline"]
        assert b["name"] == baseline
        for key in ("energy_pJ", "latency_ns", "tops", "tops_per_w", "tops_per_mm2", "area_mm2", "breakdown", "layers"):
            assert key in b, (model, key)
        assert len(b["layers"]) == len(d["layers"])
        if baseline == "gpu-a100":
            assert b["area_mm2"] == 826.0           # the die
        elif baseline == "cpu-xeon":
            assert b["area_mm2"] == 660.0
        else:                                        # the macros the model occupies
            assert b["area_mm2"] == pytest.approx(sum(lc["area_mm2"] for lc in b["layers"]))


def test_phases_4_reproduces_hermes_four_phase():
    """Le Gallo et al., Nat. Electron. 6, 680 (2023): four-phase mode, 16.1 TOPS and 2.48 TOPS/W
    (within the issue's 25 %), through `--phases 4`."""
    res = runner.invoke(app, ["estimate", "mvm:256x256", "--chip", "pcm-hermes", "--phases", "4", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert abs(d["tops"] / 16.1 - 1) <= 0.25, d["tops"]
    assert abs(d["tops_per_w"] / 2.48 - 1) <= 0.25, d["tops_per_w"]
    bad = runner.invoke(app, ["estimate", "mvm:8x8", "--phases", "0"])
    assert bad.exit_code == 2 and "phases" in bad.stderr
