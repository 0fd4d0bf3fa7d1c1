"""The package's public API is type-checked: mypy over ``src/aimc`` must pass.

``aimc`` ships ``py.typed``, so users' type checkers read its annotations; this test runs
``python -m mypy`` with the project's configuration (``[tool.mypy]`` in ``pyproject.toml``:
``files = ["src/aimc"]``, the pydantic plugin, ``check_untyped_defs``) and fails on any
error, printing mypy's report. Every module is checked: no file may opt out. mypy's
incremental cache (``.mypy_cache/``) makes a repeated run fast.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "aimc"


def test_mypy_passes_on_the_whole_package():
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mypy found type errors (fix them; config: pyproject [tool.mypy]):\n{out[-8000:]}"
    checked = re.search(r"Success: no issues found in (\d+) source files", out)
    assert checked, out[-2000:]
    n_files = sum(1 for _ in PACKAGE.rglob("*.py"))
    assert int(checked.group(1)) == n_files, f"mypy checked {checked.group(1)} files, src/aimc has {n_files}"


def test_no_module_opts_out_of_type_checking():
    """No per-file ``# mypy: ignore-errors`` and no config override that skips modules."""
    opted_out = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")
                 if re.search(r"#\s*mypy:\s*ignore-errors", p.read_text(encoding="utf-8"))]
    assert not opted_out, f"modules opting out of mypy: {opted_out}"
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert cfg["files"] == ["src/aimc"]
    assert "exclude" not in cfg
    skipped = [o for o in cfg.get("overrides", []) if o.get("ignore_errors") or o.get("follow_imports") == "skip"]
    assert not skipped, f"[[tool.mypy.overrides]] that skip modules: {skipped}"
    assert (PACKAGE / "py.typed").is_file()
