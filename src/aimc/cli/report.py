"""``aimc report RUN_DIR``: the HTML report and PNGs of a sweep's run directory."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aimc.cli.common import console, user_errors

__all__ = ["report_cmd"]


def report_cmd(
    run_dir: Path = typer.Argument(..., help="Run directory of `aimc sweep` (holds results.parquet)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for report.html and the PNGs "
                                                         "(default: RUN_DIR/report)."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing report files."),
    png: bool = typer.Option(True, "--png/--no-png", help="Also write one PNG per chart (matplotlib)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Accuracy threshold of the yield "
                                                                        "charts (default: 98% of the median)."),
) -> None:
    """Write a self-contained HTML report (interactive plotly charts, works offline) and PNGs."""
    from aimc.report.html import write_report

    with user_errors():
        paths = write_report(run_dir, out, force=force, png=png, threshold=threshold)
    console.print(f"wrote {paths[0]}" + (f" and {len(paths) - 1} PNGs in {paths[0].parent}" if len(paths) > 1 else ""),
                  soft_wrap=True, highlight=False)
