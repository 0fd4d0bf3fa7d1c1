"""``aimc --version`` and ``aimc baselines`` (issue 10, project hygiene)."""
import re
import tomllib

import pytest
from pathlib import Path

from typer.testing import CliRunner

import aimc
from aimc.cli.main import app
from aimc.cost import baselines

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def test_version_prints_the_package_version_and_exits_0():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0, res.output
    assert res.stdout == f"aimc {aimc.__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", aimc.__version__)


def test_version_has_one_source_of_truth():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "aimc.__version__"}


def test_baselines_lists_every_preset_with_its_kind_one_line_each():
    res = runner.invoke(app, ["baselines"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert [ln.split()[0] for ln in lines] == baselines.names()
    kinds = {ln.split()[0]: ln.split()[1] for ln in lines}
    assert kinds == {"cpu-xeon": "cpu", "dimc-22nm": "dimc", "gpu-a100": "gpu", "gpu-h100": "gpu"}
    assert any(ln.startswith("gpu-a100") and "A100" in ln for ln in lines)


def test_every_listed_baseline_is_accepted_by_estimate():
    for name in baselines.names():
        res = runner.invoke(app, ["estimate", "mvm:64x64", "--chip", "ideal", "--baseline", name, "--json"])
        assert res.exit_code == 0, (name, res.output)


@pytest.mark.parametrize("module", ["aimc", "aimc.cli.main"])
def test_python_dash_m_runs_the_cli(module):
    """``python -m aimc`` and ``python -m aimc.cli.main`` are the ``aimc`` command."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"aimc {aimc.__version__}"
