"""Tests of aimc.experiments.demo: the drift demo on digits, its JSON and its plot."""
import json

import pytest
import torch

from aimc.config import ConfigError
from aimc.experiments.common import time_label
from aimc.experiments.demo import run_demo
from aimc.report.demo_plot import plot_demo

CHIP = "pcm-hermes"
YEAR = 31536000
ROW_KEYS = {"label", "t_s", "no_gdc_mean", "no_gdc_std", "no_gdc_per_chip", "gdc_mean", "gdc_std", "gdc_per_chip"}
TOP_KEYS = {"dataset", "chip", "method", "n_chips", "seed", "chip_seeds", "checkpoint", "programmed", "n_train",
            "n_test", "n_params", "fp_accuracy", "torch_threads", "elapsed_s", "rows"}


@pytest.fixture(scope="module")
def result():
    calls = []
    r = run_demo("digits", chip=CHIP, n_chips=2, times_s=(1, YEAR), seed=0,
                 progress=lambda a, t, d: calls.append((a, t, d)))
    return r, calls


def test_result_has_documented_keys_and_is_json(result):
    r, _ = result
    assert set(r) == TOP_KEYS
    assert json.loads(json.dumps(r)) == r
    assert (r["dataset"], r["chip"], r["n_chips"], r["chip_seeds"]) == ("digits", CHIP, 2, [0, 1])
    assert [row["label"] for row in r["rows"]] == ["1 s", "1 year"]
    for row in r["rows"]:
        assert set(row) == ROW_KEYS
        assert len(row["no_gdc_per_chip"]) == len(row["gdc_per_chip"]) == 2
        assert row["no_gdc_mean"] == pytest.approx(sum(row["no_gdc_per_chip"]) / 2)


def test_accuracies_are_plausible(result):
    r, _ = result
    n = r["n_test"]
    slack = 3 * (0.25 / n) ** 0.5  # 3 binomial std errors at worst (p = 0.5)
    assert r["fp_accuracy"] > 0.9
    first, year = r["rows"]
    assert first["no_gdc_mean"] > r["fp_accuracy"] - 0.05  # 1 s after programming: close to FP
    assert year["gdc_mean"] >= year["no_gdc_mean"] - slack - 0.02


def test_progress_hook_counts_every_step(result):
    _, calls = result
    total = calls[0][1]
    assert all(t == total for _, t, _ in calls)
    assert sum(a for a, _, _ in calls) == total
    assert calls[-1][2].startswith("chip 2/2")


def test_deterministic_per_chip_seed_and_threads_restored(result):
    r, _ = result
    threads = torch.get_num_threads()
    one = run_demo("digits", chip=CHIP, n_chips=1, times_s=(1,), seed=0)
    assert torch.get_num_threads() == threads
    assert one["fp_accuracy"] == r["fp_accuracy"]
    assert one["rows"][0]["no_gdc_per_chip"][0] == r["rows"][0]["no_gdc_per_chip"][0]
    assert one["rows"][0]["no_gdc_std"] == 0.0


def test_ideal_chip_matches_digital():
    r = run_demo("digits", chip="ideal", n_chips=1, times_s=(YEAR,))
    assert r["rows"][0]["no_gdc_mean"] == r["rows"][0]["gdc_mean"] == r["fp_accuracy"]


def test_plot_writes_a_png(result, tmp_path):
    path = plot_demo(result[0], tmp_path / "sub" / "demo.png")
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kwargs, match", [
    (dict(dataset="nope"), "unknown dataset 'nope'"),
    (dict(n_chips=0), "n_chips"),
    (dict(times_s=(0, 1)), "times_s"),
    (dict(times_s=()), "times_s"),
    (dict(seed=-1), "seed"),
    (dict(max_test=0), "max_test"),
])
def test_bad_arguments_fail_fast(kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_demo(**{"chip": CHIP, **kwargs})


def test_unknown_chip_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown chip 'nope'"):
        run_demo(chip="nope")


def test_time_labels():
    assert [time_label(t) for t in (1, 3600, 86400, 2592000, YEAR)] == ["1 s", "1 h", "1 day", "1 month", "1 year"]
    assert time_label(0.5) == "0.5 s" and time_label(7200) == "2 h" and time_label(2 * YEAR) == "2 years"
