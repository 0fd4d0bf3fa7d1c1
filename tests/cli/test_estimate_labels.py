"""``aimc estimate`` says what its numbers are (issue 10, item 8): pipelined TOPS next to
2·MACs/latency, and plots label layers by what they are, not "0", "3", "7"."""
import json

import pytest
from typer.testing import CliRunner

import aimc
from aimc.cli.main import app
from aimc.cost.estimator import estimate
from aimc.workloads.catalog import load_workload

runner = CliRunner()


def test_transformer_prints_pipelined_and_one_at_a_time_tops():
    chip = aimc.chips.load("pcm-hermes")
    r = estimate(load_workload("transformer", chip), chip)
    ops = 2.0 * sum(lc.macs for lc in r.layers)
    assert r.tops_latency == pytest.approx(ops / r.latency_ns / 1e3, rel=1e-12)
    assert r.tops > 5 * r.tops_latency  # the two differ by the pipeline depth: they must be told apart
    out = " ".join(runner.invoke(app, ["estimate", "transformer"]).stdout.split())
    assert f"{r.tops:.3g} TOPS pipelined" in out
    assert f"{r.tops_latency:.3g} TOPS one inference at a time (2·MACs / latency)" in out
    d = json.loads(runner.invoke(app, ["estimate", "transformer", "--json"]).stdout)
    assert d["tops_latency"] == pytest.approx(r.tops_latency) and d["tops"] == pytest.approx(r.tops)


def test_plot_labels_layers_by_name_kind_and_shape(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from aimc.report.cost_plot import plot_breakdown

    seen = []
    real = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: (seen.append(
        [t.get_text() for t in fig.axes[0].get_xticklabels()]), real(fig, *a, **k))[1])
    chip = aimc.chips.load("pcm-hermes")
    r = estimate(load_workload("digits-cnn", chip), chip)
    plot_breakdown(r, tmp_path / "p.png")
    assert seen == [["0: conv 9x16", "3: conv 144x32", "7: linear 128x10"]]
    assert r.to_dict()["layers"][0]["label"] == "0: conv 9x16"
