"""The kernel build: its cache key follows torch, the C++ ABI, Python and the compiler, and
a cold build is announced exactly once (fast test with a stand-in compiler; slow test with
the real one in a fresh TORCH_EXTENSIONS_DIR)."""
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.utils.cpp_extension

from aimc import cpp

SRC = str(Path(cpp.__file__).resolve().parents[2])


def test_key_changes_with_torch_version_and_abi(monkeypatch):
    base = cpp.build_key()
    assert base == cpp.build_key() and base.startswith("aimc_kernels_")
    monkeypatch.setattr(torch, "__version__", "0.0.1+other")
    other_torch = cpp.build_key()
    monkeypatch.undo()
    monkeypatch.setattr(torch._C, "_GLIBCXX_USE_CXX11_ABI", not torch._C._GLIBCXX_USE_CXX11_ABI)
    other_abi = cpp.build_key()
    monkeypatch.undo()
    monkeypatch.setenv("CXX", "no-such-compiler-aimc")
    other_cxx = cpp.build_key()
    monkeypatch.undo()
    assert len({base, other_torch, other_abi, other_cxx}) == 4
    assert cpp.build_key() == base


def test_key_covers_every_environment_field():
    env = cpp._environment()
    assert {"torch", "torch_dir", "cxx11_abi", "python", "compiler"} <= set(env)
    keys = {cpp.build_key({**env, field: env[field] + "-changed"}) for field in env}
    assert len(keys) == len(env) and cpp.build_key(env) not in keys


def test_build_directory_follows_torch_extensions_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    assert cpp.build_directory("aimc_kernels_x") == os.path.join(str(tmp_path), "aimc_kernels_x")
    assert not cpp.is_built("aimc_kernels_x")


def test_cold_build_is_announced_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    calls = []

    def fake_load_inline(name, build_directory, **kwargs):  # a compiler that leaves the .so behind
        calls.append(name)
        Path(build_directory, f"{name}.so").touch()
        return f"module {name}"

    monkeypatch.setattr(torch.utils.cpp_extension, "load_inline", fake_load_inline)
    with caplog.at_level(logging.INFO, logger="aimc"):
        first = cpp._build("aimc_kernels_test")
        second = cpp._build("aimc_kernels_test")
    assert first == second == "module aimc_kernels_test" and calls == ["aimc_kernels_test"] * 2
    compiling = [r for r in caplog.records if "compiling C++ kernels" in r.getMessage()]
    assert len(compiling) == 1 and compiling[0].levelno == logging.WARNING
    assert compiling[0].progress == "compiling C++ kernels" and str(tmp_path) in compiling[0].getMessage()
    assert sum("compiled in" in r.getMessage() for r in caplog.records) == 1


def test_failed_build_warns_and_falls_back(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setattr(cpp, "_module", None)
    monkeypatch.setattr(cpp, "_failed", False)

    def broken(**kwargs):
        raise RuntimeError("no compiler")

    monkeypatch.setattr(torch.utils.cpp_extension, "load_inline", broken)
    with pytest.warns(RuntimeWarning, match="no compiler"):
        assert cpp.load() is None
    assert cpp.load() is None  # once: no second attempt, no second warning


def test_extension_takes_torchs_openmp_runtime():
    """In a process with only torch and the kernels, one OpenMP runtime is mapped: the
    extension links none of its own. (Other wheels may bring theirs: scikit-learn does.)"""
    if not cpp.available() or not Path("/proc/self/maps").exists():
        pytest.skip("C++ kernels or /proc not available")
    code = ("import json, torch; from aimc import cpp; assert cpp.available(); "
            "print(json.dumps(sorted({l.split()[-1] for l in open('/proc/self/maps') "
            "if any(k in l for k in ('libgomp', 'libiomp', 'libomp'))})))")
    env = {**os.environ, "PYTHONPATH": SRC}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    runtimes = json.loads(res.stdout.strip().splitlines()[-1])
    assert len(runtimes) <= 1, runtimes


@pytest.mark.slow
def test_real_cold_build_says_so_once(tmp_path):
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path), "PYTHONPATH": SRC}
    env.pop("AIMC_NO_CPP", None)
    code = "from aimc import cpp; assert cpp.available()"
    cold = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)
    assert cold.returncode == 0, cold.stderr
    assert cold.stderr.count("aimc: compiling C++ kernels") == 1
    warm = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert warm.returncode == 0, warm.stderr
    assert "compiling" not in warm.stderr
