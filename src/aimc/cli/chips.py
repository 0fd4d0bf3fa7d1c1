"""``aimc chips``: list the chip presets; ``aimc chips schema`` prints the JSON Schema of
chip files; ``aimc chips validate FILE...`` checks chip files against it.

Example:
    >>> from typer.testing import CliRunner
    >>> from aimc.cli.main import app
    >>> import json; json.loads(CliRunner().invoke(app, ["chips", "schema"]).stdout)["title"]
    'aimc chip spec'
"""
from __future__ import annotations

from pathlib import Path
from typing import List

import typer

import aimc.chips
from aimc.cli.common import fail
from aimc.config import ConfigError

__all__ = ["chips_app"]

chips_app = typer.Typer(help="Without a command: list the chip presets. schema: print the JSON Schema of chip files; "
                        "validate FILE...: check chip files against it.",
                        invoke_without_command=True, no_args_is_help=False)


@chips_app.callback()
def chips_cmd(ctx: typer.Context) -> None:
    """List the chip presets with a one-line description each (``schema``, ``validate``: see --help)."""
    if ctx.invoked_subcommand is not None:
        return
    for name in aimc.chips.names():
        try:
            text = " ".join(aimc.chips.load(name).description.split())
        except ConfigError as e:
            text = f"(invalid preset: {str(e).splitlines()[0]})"
        first = text.split(". ")[0].rstrip(".") + "."
        typer.echo(f"{name:<14} {first}")


@chips_app.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema (draft 2020-12) of chip files, generated from the config classes."""
    typer.echo(aimc.chips.json_schema())


@chips_app.command("validate")
def validate_cmd(files: List[Path] = typer.Argument(..., help="Chip spec YAML files.")) -> None:
    """Check chip files against the schema and the loader's cross-field rules; exit 2 if any fails."""
    from aimc.chips.schema import validate

    bad = []
    for f in files:
        try:
            chip = validate(f)
        except ConfigError as e:
            lines = str(e).splitlines()
            bad.append("; ".join([lines[0].rstrip(":"), *(ln.strip() for ln in lines[1:])]))
            continue
        typer.echo(f"{f}: valid ({chip.name}: {chip.n_tiles} tiles of {chip.rows}x{chip.cols}, "
                   f"device {chip.device.kind}{', digital units ' + chip.digital.kind if chip.digital else ''})")
    if bad:
        fail(" | ".join(bad))
