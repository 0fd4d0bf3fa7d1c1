"""``aimc sweep FILE``: run a sweep file (Monte Carlo chips over a grid of chip designs)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aimc.cli.common import console, progress_bar, user_errors

__all__ = ["sweep_cmd"]


def sweep_cmd(
    file: Path = typer.Argument(..., help="The sweep file (YAML; see docs/guides/sweeps.md)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory (default runs/<name>); a run directory "
                                                           "of the same file is resumed."),
    workers: int = typer.Option(1, help="Local worker processes (0: this process)."),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="Run on a dask.distributed scheduler, "
                                                                  "e.g. tcp://10.0.0.1:8786."),
    scheduler_file: Optional[Path] = typer.Option(None, "--scheduler-file", help="Or the scheduler file "
                                                                                 "of a Dask cluster."),
    progress: bool = typer.Option(True, help="Show a progress bar on stderr."),
) -> None:
    """Run every point of a sweep file; results in RUN_DIR/results.parquet and results.csv."""
    from aimc.sweep.executors import make_executor
    from aimc.sweep.run import run_sweep

    with user_errors():
        executor = make_executor(cluster, None if scheduler_file is None else str(scheduler_file), workers)
        with progress_bar(progress) as hook:
            run_dir = run_sweep(file, out, executor=executor, progress=hook)
    from aimc.sweep.results import read_table

    table = read_table(run_dir)
    console.print(f"{table.num_rows} rows -> {run_dir / 'results.parquet'} and {run_dir / 'results.csv'}",
                  soft_wrap=True, highlight=False)
