"""Every script in ``examples/`` runs to exit 0 in a fresh interpreter and leaves no file
behind, neither in the repository nor in its working directory (so it also runs twice)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


_SKIP = {".git", "__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache", ".venv", "site"}


def _files(root: Path) -> set[Path]:
    out = set()
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x not in _SKIP]
        out.update(Path(d) / f for f in files)
    return out


def test_there_are_examples():
    assert {p.name for p in EXAMPLES} >= {"deploy_digits.py", "hat_then_deploy.py", "price_vs_baseline.py",
                                          "custom_chip.py", "onchip_mlp.py"}


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_and_leaves_no_files(script, tmp_path):
    pytest.importorskip("sklearn", reason="the examples use the digits data set (pip install 'aimc[data]')")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    before = _files(ROOT)
    # generous limit: the first run of a session may JIT-build the C++ kernels (~1 min)
    res = subprocess.run([sys.executable, str(script)], check=False, cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, f"{script.name} failed:\n{res.stdout}\n{res.stderr}"
    assert res.stdout.strip(), f"{script.name} printed nothing"
    assert "Traceback" not in res.stderr, res.stderr
    assert list(tmp_path.iterdir()) == [], f"{script.name} wrote into its working directory"
    assert _files(ROOT) - before == set(), f"{script.name} left files in the repository"
