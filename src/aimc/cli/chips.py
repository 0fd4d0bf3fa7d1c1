"""``aimc chips``: list the chip presets."""
from __future__ import annotations

import typer

import aimc.chips
from aimc.config import ConfigError

__all__ = ["chips_cmd"]


def chips_cmd() -> None:
    """List the chip presets with a one-line description each."""
    for name in aimc.chips.names():
        try:
            text = " ".join(aimc.chips.load(name).description.split())
        except ConfigError as e:
            text = f"(invalid preset: {str(e).splitlines()[0]})"
        first = text.split(". ")[0].rstrip(".") + "."
        typer.echo(f"{name:<14} {first}")
