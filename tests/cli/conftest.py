"""Shared by the command-line tests: run a command expecting success, or a user error
that is one ``error: ...`` line on stderr with exit code 2 (no traceback)."""
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from aimc.cli.main import app

_runner = CliRunner()


def _ok(args):
    res = _runner.invoke(app, args)
    assert res.exit_code == 0, (args, res.output)
    return res


def _one_line_error(args) -> str:
    res = _runner.invoke(app, args)
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), (args, res.output)
    assert "Traceback" not in res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


@pytest.fixture(scope="session")
def cli():
    """``cli.ok(args)`` -> the result; ``cli.error(args)`` -> the one error line."""
    return SimpleNamespace(ok=_ok, error=_one_line_error)
