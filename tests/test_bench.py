"""bench_mvm: one row per shape with the documented keys; bad shapes rejected."""
import pytest

from aimc.bench import bench_mvm, parse_shape


def test_bench_rows_have_documented_keys():
    rows = bench_mvm(shapes=((300, 40, 8), (64, 64, 4)), chip="pcm-hermes", repeats=3, warmup=1)
    assert [r["shape"] for r in rows] == [[300, 40, 8], [64, 64, 4]]
    for r in rows:
        assert {"shape", "analog_ms", "digital_ms", "ratio"} <= set(r)
        assert r["analog_ms"] > 0 and r["digital_ms"] > 0
        assert r["ratio"] == pytest.approx(r["analog_ms"] / r["digital_ms"], rel=0.01)


def test_parse_shape_rejects_bad_text():
    assert parse_shape("8x4x2") == (8, 4, 2)
    with pytest.raises(ValueError, match="IN x OUT x BATCH"):
        parse_shape("8x4")
