"""Every command's ``--help`` keeps its bracketed text (issue 10, item 8): Rich markup
used to eat ``[...]`` (``[t-eval, this]``, ``mvm:ROWSxCOLS[xN]``)."""
import re

import pytest
import typer
from typer.testing import CliRunner

from aimc.cli.main import app

runner = CliRunner()


def _commands(cmd, path: tuple[str, ...] = ()):
    yield path, cmd
    if hasattr(cmd, "commands"):  # a group (typer's own click)
        for name, sub in cmd.commands.items():
            yield from _commands(sub, (*path, name))


ROOT = typer.main.get_command(app)
COMMANDS = list(_commands(ROOT))


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_every_command_is_listed():
    names = {" ".join(p) for p, _ in COMMANDS}
    assert {"", "demo", "train", "chips", "estimate", "bench", "bench mvm", "bench train"} <= names


@pytest.mark.parametrize("path, cmd", COMMANDS, ids=[" ".join(p) or "aimc" for p, _ in COMMANDS])
def test_help_keeps_every_bracketed_text(path, cmd):
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    out = _flat(result.stdout)
    texts = [cmd.help or ""] + [getattr(p, "help", None) or "" for p in cmd.params]
    for text in texts:
        for bracket in re.findall(r"\[[^\]]*\]", text):
            assert _flat(bracket) in out, f"{' '.join(path)} --help lost {bracket!r}"


def test_known_bracketed_help_texts():
    assert "[t-eval, this]" in _flat(runner.invoke(app, ["train", "--help"]).stdout)
    assert "mvm:ROWSxCOLS[xN]" in _flat(runner.invoke(app, ["estimate", "--help"]).stdout)
