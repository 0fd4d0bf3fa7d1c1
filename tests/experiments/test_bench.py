"""bench_mvm: one row per shape with the documented keys; bad shapes rejected."""
import pytest

from aimc.experiments.bench import bench_mvm, parse_shape


def test_bench_rows_have_documented_keys():
    rows = bench_mvm(shapes=((300, 40, 8), (64, 64, 4)), chip="pcm-hermes", repeats=3, warmup=1)
    assert [r["shape"] for r in rows] == [[300, 40, 8], [64, 64, 4]]
    for r in rows:
        assert {"shape", "analog_ms", "digital_ms", "ratio"} <= set(r)
        assert r["analog_ms"] > 0 and r["digital_ms"] > 0
        assert r["ratio"] == pytest.approx(r["analog_ms"] / r["digital_ms"], rel=0.01)


def test_bench_threads_option_sets_reports_and_restores():
    import torch

    before = torch.get_num_threads()
    for n in (1, 2):
        row = bench_mvm(shapes=((64, 32, 4),), chip="ideal", repeats=1, warmup=0, threads=n)[0]
        assert row["threads"] == n and isinstance(row["cpp"], bool)
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        bench_mvm(shapes=((8, 8, 2),), threads=0)


def test_parse_shape_rejects_bad_text():
    assert parse_shape("8x4x2") == (8, 4, 2)
    with pytest.raises(ValueError, match="IN x OUT x BATCH"):
        parse_shape("8x4")


def test_bench_train_rows_have_documented_keys():
    import json

    from typer.testing import CliRunner

    from aimc.experiments.bench import bench_train
    from aimc.cli.main import app

    rows = bench_train(names=("analog-sgd", "c-ttv2"), repeats=1, warmup=0)
    assert [r["name"] for r in rows] == ["analog-sgd", "c-ttv2"]
    for r in rows:
        assert r["ms_per_epoch"] > 0 and r["digital_ms_per_epoch"] > 0
        assert r["ratio"] == pytest.approx(r["ms_per_epoch"] / r["digital_ms_per_epoch"], rel=0.01)
    with pytest.raises(ValueError, match="names"):
        bench_train(names=("magic",))
    res = CliRunner().invoke(app, ["bench", "train", "--json", "--repeats", "1", "--warmup", "0", "--name", "tiki-taka-v2",
                                   "--threads", "2"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout.strip())
    assert {"name", "ms_per_epoch", "digital_ms_per_epoch", "ratio"} <= set(row) and row["name"] == "tiki-taka-v2"
    assert row["threads"] == 2


def test_bench_cnn_rows_have_documented_keys():
    import json

    from typer.testing import CliRunner

    from aimc.experiments.bench import bench_cnn
    from aimc.cli.main import app

    rows = bench_cnn(batch=4, repeats=2, warmup=1)
    assert [r["name"] for r in rows] == ["lenet5", "fashion-cnn"]
    assert [r["input"] for r in rows] == [[4, 1, 32, 32], [4, 1, 28, 28]]
    for r in rows:
        assert r["analog_ms"] > 0 and r["digital_ms"] > 0 and r["chip"] == "pcm-hermes"
        assert r["ratio"] == pytest.approx(r["analog_ms"] / r["digital_ms"], rel=0.01, abs=0.005)  # 2 decimals
    with pytest.raises(ValueError, match="names"):
        bench_cnn(names=("alexnet",))
    res = CliRunner().invoke(app, ["bench", "cnn", "--json", "--batch", "2", "--repeats", "1", "--warmup", "0",
                                   "--name", "lenet5", "--threads", "1"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout.strip())
    assert {"name", "analog_ms", "digital_ms", "ratio"} <= set(row) and row["name"] == "lenet5" and row["threads"] == 1
