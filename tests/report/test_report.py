"""aimc report: charts chosen from the table, files through aimc.outputs, the CLI."""
import pytest
from typer.testing import CliRunner

from aimc.cli.main import app
from aimc.report.charts import build_charts
from aimc.report.html import write_report
from aimc.report.run import RunError, load_run

from .conftest import sweep_rows, write_run


def test_charts_from_sweep_table(sweep_run):
    charts = {c.key: c for c in build_charts(load_run(sweep_run))}
    assert {"accuracy_vs_time", "accuracy_vs_adc_bits", "energy", "pareto"} <= set(charts)
    acc_t = charts["accuracy_vs_time"]
    assert len(acc_t.traces) == 6 and all(t.x == [1.0, 86400.0] for t in acc_t.traces)  # chip x bits groups
    assert charts["energy"].stacked and {t.name for t in charts["energy"].traces} == {"energy_adc", "energy_array"}
    front = charts["pareto"].traces[1]
    assert front.x == sorted(front.x) and front.y == sorted(front.y)  # cheaper -> less accurate on the front
    pts = charts["pareto"].traces[0]
    for e, a in zip(pts.x, pts.y):  # nothing is both cheaper and more accurate than a front point
        assert not any(e2 < e and a2 > a for e2, a2 in zip(pts.x, pts.y)) or (e, a) not in zip(front.x, front.y)


def test_mean_over_seeds_is_exact(tmp_path):
    cols = {"point_id": [0, 0, 1, 1], "seed": [0, 1, 0, 1], "p.adc.bits": [4, 4, 8, 8],
            "m.accuracy": [0.5, 0.75, 1.0, 1.0]}
    (t,) = build_charts(load_run(write_run(tmp_path / "r", cols)))[0].traces
    assert t.x == [4, 8] and t.y == [0.625, 1.0] and t.err == [0.125, 0.0]


def test_write_report_files_and_no_overwrite(sweep_run, tmp_path):
    paths = write_report(sweep_run, tmp_path / "out")
    assert paths[0].name == "report.html" and all(p.exists() for p in paths)
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths[1:])
    page = paths[0].read_text()
    assert "<script src" not in page and "Plotly.newPlot" in page  # plotly.js inline: works offline
    before = paths[0].stat().st_mtime_ns
    with pytest.raises(FileExistsError, match="--force"):
        write_report(sweep_run, tmp_path / "out")
    assert paths[0].stat().st_mtime_ns == before
    assert write_report(sweep_run, tmp_path / "out", force=True) == paths


def test_csv_only_run(tmp_path):
    run = write_run(tmp_path / "r", sweep_rows(1), csv_only=True)
    assert load_run(run).n_points == 12


def test_cli(sweep_run, tmp_path):
    r = CliRunner().invoke(app, ["report", str(sweep_run), "--out", str(tmp_path / "o"), "--no-png"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "report.html").exists()
    r = CliRunner().invoke(app, ["report", str(sweep_run), "--out", str(tmp_path / "o"), "--no-png"])
    assert r.exit_code == 2 and "--force" in r.output
    r = CliRunner().invoke(app, ["report", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "not a directory" in r.output


def test_not_a_run_directory(tmp_path):
    with pytest.raises(RunError, match="no results.parquet"):
        load_run(tmp_path)
