"""What every ``aimc`` command shares: consoles, one-line user errors, the progress bar.

Example:
    >>> pct(0.5, 0.01)
    '50.00 ± 1.00'
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.text import Text

from aimc.config import ConfigError
from aimc.outputs import claim_output

__all__ = ["console", "err", "fail", "user_errors", "output_file", "progress_bar", "library_log", "pct"]

console = Console()
err = Console(stderr=True)


def fail(message: str) -> None:
    """Print ``error: message`` to stderr (no markup, no wrapping) and exit 2."""
    err.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True)
    raise typer.Exit(2)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's input errors into one-line messages instead of tracebacks."""
    try:
        yield
    except KeyError as e:
        fail(str(e.args[0]) if e.args else "unknown key")
    except (ConfigError, ValueError, FileNotFoundError, FileExistsError) as e:
        fail(" ".join(str(e).split()))
    except OSError as e:  # unreadable or unwritable files: name the file, not a traceback
        fail(f"{e.filename}: {e.strerror}" if e.filename and e.strerror else " ".join(str(e).split()))


def output_file(path: Path | None, default: str, force: bool, option: str = "--out") -> Path:
    """Where a command writes its result (:mod:`aimc.outputs`, one policy for all):
    an explicit ``path`` that exists is refused unless ``force``; the ``default`` name
    becomes ``name-1.ext``, ``name-2.ext``, ... when taken. Checked before the command
    runs; the writer creates missing directories when it writes.

    Raises:
        FileExistsError / ValueError: as :func:`aimc.outputs.claim_output`.
    """
    if path is None:
        return claim_output(default, if_exists="number", mkdir=False)
    return claim_output(path, if_exists="overwrite" if force else "error", mkdir=False,
                        hint=f"pass --force to overwrite it or {option} to choose another file")


@contextmanager
def progress_bar(enabled: bool) -> Iterator:
    """A ``progress(advance, total, description)`` hook drawing a Rich bar on stderr."""
    if not enabled or not err.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar, library_log(bar) as show:
        task = bar.add_task("starting", total=None)
        show.task = task

        def hook(advance: int, total: int, description: str) -> None:
            bar.update(task, advance=advance, total=total, description=description)

        yield hook


class BarLog(logging.Handler):
    """Prints the library's log lines (e.g. the one-off C++ kernel build) above a progress
    bar, and puts a record's ``progress`` text (if any) into the bar's description."""

    def __init__(self, bar: Progress) -> None:
        super().__init__(logging.INFO)
        self.bar = bar
        self.task: TaskID | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.bar.console.print(Text(record.getMessage()), soft_wrap=True, highlight=False)
        progress = getattr(record, "progress", None)
        if self.task is not None and progress:
            self.bar.update(self.task, description=progress)


@contextmanager
def library_log(bar: Progress) -> Iterator[BarLog]:
    """Route the ``aimc`` logger's INFO+ records to ``bar`` meanwhile (without a bar, its
    warnings reach stderr through Python's last-resort handler)."""
    logger, handler = logging.getLogger("aimc"), BarLog(bar)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def pct(mean: float, std: float) -> str:
    return f"{100 * mean:.2f} ± {100 * std:.2f}"
