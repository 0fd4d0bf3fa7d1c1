"""``aimc baselines``: list the cost baselines an analog chip is priced against.

Example:
    >>> from typer.testing import CliRunner
    >>> from aimc.cli.main import app
    >>> "gpu-a100" in CliRunner().invoke(app, ["baselines"]).stdout
    True
"""
from __future__ import annotations

import typer

from aimc.config import ConfigError
from aimc.cost import baselines

__all__ = ["baselines_cmd"]


def baselines_cmd() -> None:
    """List the cost baselines (for --baseline) with their kind and a one-line description."""
    for name in baselines.names():
        try:
            spec = baselines.load_baseline(name)
            kind = spec.kind
            text = " ".join(spec.description.split())
        except ConfigError as e:
            kind, text = "?", f"(invalid preset: {str(e).splitlines()[0]})"
        first = text.split(". ")[0].rstrip(".") + "."
        typer.echo(f"{name:<12} {kind:<5} {first}")
