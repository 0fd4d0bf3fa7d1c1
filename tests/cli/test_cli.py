"""Tests of the ``aimc`` command line (typer's CliRunner; stdout and stderr apart)."""
import json

import pytest
from typer.testing import CliRunner

from aimc.cli.main import app

runner = CliRunner()


def _ok(result):
    assert result.exit_code == 0, result.output
    return result


def _usage_error(result):
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_chips_lists_presets_one_line_each():
    out = _ok(runner.invoke(app, ["chips"])).stdout.splitlines()
    names = [line.split()[0] for line in out]
    assert "ideal" in names and "pcm" in names
    assert any(line.startswith("ideal") and "Ideal crossbar" in line for line in out)


@pytest.mark.parametrize("args, needle", [
    (["--dataset", "nope"], "'nope'"),
    (["--chip", "nope"], "unknown chip 'nope'"),
    (["--chips", "0"], "--chips must be >= 1"),
])
def test_demo_bad_input_is_one_line_error(tmp_path, args, needle):
    line = _usage_error(runner.invoke(app, ["demo", "--out", str(tmp_path / "d.png"), *args]))
    assert needle in line


def test_demo_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "d.png"
    out.write_bytes(b"keep me")
    line = _usage_error(runner.invoke(app, ["demo", "--out", str(out)]))
    assert "--force" in line and str(out) in line
    assert out.read_bytes() == b"keep me"


def test_demo_json_prints_only_json_and_saves_png(tmp_path):
    out = tmp_path / "d.png"
    out.write_bytes(b"old")
    res = _ok(runner.invoke(app, ["demo", "--chip", "pcm-hermes", "--chips", "1", "--out", str(out),
                                  "--force", "--json"]))
    r = json.loads(res.stdout)
    assert r["chip"] == "pcm-hermes" and r["n_chips"] == 1
    assert [row["label"] for row in r["rows"]] == ["1 s", "1 h", "1 day", "1 month", "1 year"]
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_demo_table(tmp_path):
    res = _ok(runner.invoke(app, ["demo", "--chip", "ideal", "--chips", "1", "--out", str(tmp_path / "d.png")]))
    assert "1 year" in res.stdout and "with GDC" in res.stdout and "±" in res.stdout
    assert (tmp_path / "d.png").exists()


def test_bench_mvm_json_tiny_shape():
    res = _ok(runner.invoke(app, ["bench", "mvm", "--json", "--shape", "64x64x8", "--shape", "32x16x4",
                                  "--repeats", "2", "--warmup", "1", "--chip", "pcm-hermes", "--threads", "1"]))
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["shape"] for r in rows] == [[64, 64, 8], [32, 16, 4]]
    for r in rows:
        assert {"shape", "analog_ms", "digital_ms", "ratio", "chip", "threads", "cpp"} <= set(r)
        assert r["chip"] == "pcm-hermes" and r["threads"] == 1
        assert r["analog_ms"] > 0 and r["digital_ms"] > 0
        assert r["ratio"] == pytest.approx(r["analog_ms"] / r["digital_ms"], rel=0.01)


def test_bench_llm_bad_store_is_a_usage_error():
    assert "--store must be lean or full" in _usage_error(runner.invoke(app, ["bench", "llm", "--store", "thin"]))


def test_bench_mvm_table_and_bad_shape():
    res = _ok(runner.invoke(app, ["bench", "mvm", "--shape", "16x16x2", "--repeats", "1", "--chip", "ideal"]))
    assert "16x16x2" in res.stdout
    assert "IN x OUT x BATCH" in _usage_error(runner.invoke(app, ["bench", "mvm", "--shape", "3x3"]))
    assert "threads" in _usage_error(runner.invoke(app, ["bench", "mvm", "--shape", "8x8x2", "--threads", "0"]))
