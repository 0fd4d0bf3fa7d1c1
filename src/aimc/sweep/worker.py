"""One sweep point, run where an executor puts it (a local process or a Dask worker).

:func:`run_point` takes a self-contained task (the point's parameters and chip, the
trained digital model, seeds, metrics, data set) and returns the point's rows of the
results table, one per seed (:mod:`aimc.sweep.results` documents the columns). It writes
nothing: the process that collects the results writes each finished point once, so a
worker that dies loses only its unfinished point, and one that ran a point twice
(rescheduled after a lost connection) cannot write it twice.

Example:
    >>> import torch
    >>> from aimc.train.onchip import digital_mlp
    >>> task = make_task(point_id=0, params={"chip": "pcm-hermes", "t_s": 3600.0}, chip=aimc.chips.load("pcm-hermes"),
    ...                  model=digital_mlp(64, 10, (8,)), dataset="digits", seeds=[0, 1], metrics=["accuracy"])
    >>> rows = run_point(task)
    >>> [(r["point_id"], r["seed"]) for r in rows], 0 <= rows[0]["m.accuracy"] <= 1
    ([(0, 0), (0, 1)], True)
"""
from __future__ import annotations

import datetime
import functools
import time
from typing import Any, Sequence

import torch
from torch import nn

import aimc
from aimc.chips import ChipSpec
from aimc.sweep.montecarlo import DEFAULT_BATCH_SIZE, DEFAULT_CHIPS_PER_PASS, chip_metrics
from aimc.workloads.data import load_dataset

__all__ = ["make_task", "run_point", "eval_set"]

_COST_METRICS = ("energy_pJ", "latency_ns", "area_mm2", "tops_per_w")
_COST_INPUTS = 64  # test images whose activations set the cost model's input statistics


def make_task(point_id: int, params: dict[str, Any], chip: ChipSpec, model: nn.Module, dataset: str,
              seeds: Sequence[int], metrics: Sequence[str], gdc: bool = True, max_test: int | None = None,
              data_seed: int = 0, chips_per_pass: int = DEFAULT_CHIPS_PER_PASS, batch_size: int = DEFAULT_BATCH_SIZE,
              threads: int = 1) -> dict[str, Any]:
    """The task of one point: everything :func:`run_point` needs, picklable."""
    return dict(point_id=int(point_id), params=dict(params), chip=chip.to_dict(), model=model, dataset=dataset,
                seeds=[int(s) for s in seeds], metrics=list(metrics), gdc=bool(gdc), max_test=max_test,
                data_seed=int(data_seed), chips_per_pass=int(chips_per_pass), batch_size=int(batch_size),
                threads=int(threads))


@functools.lru_cache(maxsize=4)
def eval_set(dataset: str, seed: int, max_test: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The test images and labels (a seeded subset of at most ``max_test``), cached per process."""
    _, _, x, y = load_dataset(dataset, seed=seed)
    if max_test is not None and len(x) > max_test:
        keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:max_test]
        x, y = x[keep], y[keep]
    return x, y


def run_point(task: dict[str, Any]) -> list[dict[str, Any]]:
    """Program the point's chips, measure its metrics; one row per seed (module doc)."""
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    old_threads = torch.get_num_threads()
    torch.set_num_threads(task["threads"])  # the same float sums on every executor
    try:
        chip = ChipSpec.from_dict(task["chip"])
        x, y = eval_set(task["dataset"], task["data_seed"], task["max_test"])
        model: nn.Module = task["model"]
        analog = aimc.convert(model, chip)
        metrics = task["metrics"]
        try:
            per_chip = chip_metrics(analog, x, y, task["seeds"], float(task["params"]["t_s"]), task["gdc"],
                                    task["batch_size"], task["chips_per_pass"], mvm_error="mvm_error" in metrics)
        except ValueError as e:  # e.g. drift compensation without signal (an ADC too coarse for one-hot reads)
            raise ValueError(f"point {task['point_id']} ({task['params']}): {e}") from None
        cost: dict[str, float] = {}
        if any(m in metrics for m in _COST_METRICS):
            from aimc.cost import estimate

            report = estimate(model, chip, inputs=x[:_COST_INPUTS])
            cost = {m: float(getattr(report, m)) for m in _COST_METRICS}
    finally:
        torch.set_num_threads(old_threads)
    wall = round(time.perf_counter() - t0, 4)
    rows = []
    for c, seed in enumerate(task["seeds"]):
        row: dict[str, Any] = {"point_id": task["point_id"], "seed": seed}
        row.update({f"p.{k}": v for k, v in task["params"].items()})
        for m in metrics:
            row[f"m.{m}"] = cost[m] if m in cost else float(per_chip[m][c])
        row.update(aimc_version=aimc.__version__, torch_version=torch.__version__, started_at=started, wall_s=wall)
        rows.append(row)
    return rows
