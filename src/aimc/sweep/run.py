"""``run_sweep``: a sweep file -> a run directory with the results table.

1. The file is read and every point expanded and validated (:func:`aimc.sweep.spec.load_sweep`);
   a bad file is refused before anything is created.
2. The run directory is created (or, on a rerun, checked to hold the same sweep file) with
   ``sweep.yaml`` and ``environment.json``; the model is trained digitally once (seeded)
   and saved as ``model.safetensors``, or read back from there on a rerun.
3. The points not finished yet go to the executor as tasks (:func:`aimc.sweep.worker.run_point`);
   each result is written as ``points/<id>.parquet`` as it arrives, by this process.
4. ``results.parquet`` and ``results.csv`` are written from the point files, also after an
   error (the finished points are kept; rerun to finish the others).

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> f = d / "s.yaml"
    >>> _ = f.write_text("model: mlp\\nhidden: [8]\\nepochs: 1\\nseeds: 2\\ngrid: {adc.bits: [6, 8]}\\n")
    >>> out = run_sweep(f, d / "run", workers=0)
    >>> read_table(out).num_rows, sorted(finished_points(out))
    (4, [0, 1])
"""
from __future__ import annotations

import datetime
import uuid
from pathlib import Path
from typing import Any, Callable, cast

from torch import nn

from aimc.outputs import write_atomic
from aimc.sweep.executors import Executor, LocalExecutor
from aimc.sweep.results import consolidate, environment, finished_points, read_table, write_json, write_point
from aimc.sweep.spec import SweepError, SweepSpec, load_sweep
from aimc.sweep.worker import make_task, run_point
from aimc.workloads.data import load_dataset
from aimc.workloads.models import digits_cnn, fashion_cnn
from aimc.workloads.recipes import RECIPES

__all__ = ["run_sweep", "default_run_dir", "finished_points", "read_table"]

Progress = Callable[[int, int, str], None]


def default_run_dir(spec: SweepSpec) -> Path:
    """``runs/<name>``: a rerun of the same file finds its run directory again."""
    return Path("runs") / spec.name


def _model(spec: SweepSpec, run_dir: Path) -> nn.Module:
    """The digital model every point programs: read from the run directory, or trained
    (or taken from the checkpoint) and saved there."""
    from aimc.nn.io import load_state, read_checkpoint, save_state

    path = run_dir / "model.safetensors"
    if spec.checkpoint is not None:
        from aimc.workloads.checkpoints import rebuild

        return rebuild(read_checkpoint(spec.checkpoint)).digital
    recipe = RECIPES[spec.dataset]
    if spec.model == "mlp":
        from aimc.train.onchip import digital_mlp

        n_in = 64 if spec.dataset == "digits" else 784
        model = digital_mlp(n_in, 10, tuple(spec.hidden), seed=spec.train_seed)
    else:
        model = {"digits-cnn": digits_cnn, "fashion-cnn": fashion_cnn}[spec.model](seed=spec.train_seed)
    if path.exists():
        load_state(model, path)
        return model
    from aimc.train.digital import train_digital

    x_tr, y_tr, _, _ = load_dataset(spec.dataset, seed=spec.train_seed)
    epochs = recipe["epochs"] if spec.epochs is None else spec.epochs
    train_digital(model, x_tr, y_tr, epochs=epochs, lr=recipe["lr"], batch_size=recipe["batch_size"],
                  seed=spec.train_seed)
    save_state(model, path, if_exists="overwrite", run={"dataset": spec.dataset, "method": "digital",
                                                        "epochs": epochs, "sweep": spec.name})
    return model


def _claim_run_dir(run_dir: Path, text: str, executor: str) -> None:
    """Create the run directory, or check that it holds this sweep (a rerun)."""
    saved = run_dir / "sweep.yaml"
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"{run_dir} is a file, not a run directory")
    if saved.exists():
        if saved.read_text(encoding="utf-8") != text:
            raise ValueError(f"{run_dir} holds another sweep ({saved} differs from this file); "
                             "give another run directory (--out) to start a new run")
        return
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ValueError(f"{run_dir} exists and is not a run directory of aimc sweep; choose another (--out)")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(saved, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def run_sweep(path: str | Path, run_dir: str | Path | None = None, executor: Executor | None = None,
              workers: int = 1, progress: Progress | None = None) -> Path:
    """Run the sweep file ``path`` into ``run_dir`` (module doc); returns the run directory.

    Args:
        path: the sweep file (:mod:`aimc.sweep.spec`).
        run_dir: where the results go; default :func:`default_run_dir`. An existing run
            directory of the same file is resumed: its finished points are skipped.
        executor: where the points run; default ``LocalExecutor(workers)``.
        workers: local processes when ``executor`` is None (0: this process).
        progress: optional ``progress(advance, total, description)`` hook, once per point.

    Raises:
        SweepError: a bad sweep file (before anything is written).
        ValueError: ``run_dir`` holds another sweep or other files.
    """
    path = Path(path)
    spec, points = load_sweep(path)  # every check before any work
    run_dir = default_run_dir(spec) if run_dir is None else Path(run_dir)
    executor = executor if executor is not None else LocalExecutor(workers)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SweepError(f"cannot read {path}: {e.strerror}") from None
    _claim_run_dir(run_dir, text, executor.name)
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    done = finished_points(run_dir)
    todo = [p for p in points if p.point_id not in done]
    report = progress or (lambda a, t, d: None)
    report(len(done), len(points), "preparing the model")
    env = environment(executor.name, started)
    env.update(sweep=spec.name, points=len(points), resumed_points=len(done))
    write_json(run_dir / "environment.json", env)
    model = _model(spec, run_dir)
    model.eval()
    tasks = [(p.point_id, make_task(p.point_id, p.params, p.chip, model, spec.dataset, spec.seed_list,
                                    spec.metrics, spec.gdc, spec.max_test, spec.train_seed, spec.chips_per_pass,
                                    spec.batch_size, spec.threads)) for p in todo]
    finished = [len(done)]

    def on_result(point_id: Any, rows: Any) -> None:
        write_point(run_dir, int(point_id), cast(list, rows))
        finished[0] += 1
        report(1, len(points), f"point {point_id} ({finished[0]}/{len(points)})")

    if hasattr(executor, "prefix"):
        executor.prefix = f"aimc-sweep-{spec.name}-{uuid.uuid4().hex[:8]}"  # unique keys on a shared cluster
    try:
        executor.run(tasks, run_point, on_result)
    finally:
        if finished_points(run_dir):
            consolidate(run_dir)
    return run_dir
