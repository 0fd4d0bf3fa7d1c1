"""aimc's compiled CPU kernels: one C++ extension, built on first use.

The sources are Python strings (:mod:`aimc.cpp.rng`, the shared counter-based normal
generator; :mod:`aimc.cpp.tile`, the tile read's DAC pre-pass and noise + ADC kernel;
:mod:`aimc.cpp.tile_conv`, its convolution front end, and :mod:`aimc.cpp.tile_conv_chips`,
the same for many Monte Carlo chips at once;
:mod:`aimc.cpp.hat`, :mod:`aimc.cpp.hat_linear` and :mod:`aimc.cpp.hat_conv`, the fused
hardware-aware-training read (and :mod:`aimc.cpp.hat_irdrop`, its IR-drop correction),
and :mod:`aimc.cpp.hat_autograd`, its autograd nodes; :mod:`aimc.cpp.program`, the fused
programming and read-matrix pass of PCM devices). :func:`load` compiles them together
with ``torch.utils.cpp_extension.load_inline`` (needs a C++ compiler and ``ninja``).

The build is cached under ``$TORCH_EXTENSIONS_DIR`` (default ``~/.cache/torch_extensions``)
in a folder named by :func:`build_key`: a hash of the sources, the flags, the torch version,
install folder and C++ ABI, the Python version and the compiler. Two environments that share
the cache folder therefore keep one build each instead of rebuilding each other's (or loading
a build made against another torch). The first build takes ~30-60 s; :func:`load` announces
it on the ``aimc.cpp`` logger (a WARNING, which Python prints to stderr when logging is not
configured; the CLI prints it above its progress bar and names it in the bar) and logs the
time taken at INFO level when done.

The extension is compiled with ``-fopenmp`` (ATen's ``at::parallel_for`` is an OpenMP
region only then) but not linked with it: its OpenMP calls bind to the runtime torch
already loaded (the wheel's own ``libgomp``), so the process keeps one thread pool.

Where no compiler is available, or with the environment variable ``AIMC_NO_CPP=1``,
:func:`load` returns None (warning once when a build fails) and every caller runs its
pure-PyTorch path instead.

Example:
    >>> from aimc import cpp
    >>> isinstance(cpp.available(), bool)
    True
"""
from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import threading
import time
import warnings

from aimc.cpp import hat, hat_autograd, hat_conv, hat_irdrop, hat_linear, program, rng, tile, tile_conv, tile_conv_chips

__all__ = ["load", "available", "build_key", "build_directory", "is_built", "CFLAGS", "LDFLAGS"]

# Flags: no -ffast-math (it would break NaN propagation and the exact rounding);
# -fno-math-errno / -fno-trapping-math let GCC vectorise sqrt and nearbyint;
# -ffp-contract=off keeps sums bit-identical to the PyTorch fallbacks
# (the polynomials use explicit std::fma).
CFLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off", "-fopenmp"]
#: No -fopenmp at link time: the OpenMP symbols resolve to torch's own runtime (see above).
LDFLAGS: list[str] = []

_PARTS = (tile, tile_conv, tile_conv_chips, hat, hat_linear, hat_conv, hat_irdrop, hat_autograd, program)
_lock = threading.Lock()
_module = None
_failed = False
log = logging.getLogger("aimc.cpp")


def _sources() -> list[str]:
    return [rng.SOURCE, hat_irdrop.KERNEL, *(p.SOURCE for p in _PARTS)]  # one unit; the bindings come last


def _compiler() -> str:
    """The compiler torch's JIT will call (``$CXX`` or ``c++``) and its version line."""
    cxx = os.environ.get("CXX", "c++")
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30).stdout
        return f"{cxx} {out.splitlines()[0] if out else '?'}"
    except (OSError, subprocess.SubprocessError):
        return f"{cxx} (not found)"


def _environment() -> dict[str, str]:
    """What a build depends on besides the sources and flags."""
    import torch

    return {"torch": torch.__version__, "torch_dir": os.path.dirname(torch.__file__),
            "cxx11_abi": str(bool(torch._C._GLIBCXX_USE_CXX11_ABI)),
            "python": f"{sys.implementation.name}{sys.version_info[0]}.{sys.version_info[1]}{getattr(sys, 'abiflags', '')}",
            "compiler": _compiler()}


def build_key(env: dict[str, str] | None = None) -> str:
    """Extension name ``aimc_kernels_<hash>``: the hash of sources, flags and :func:`_environment`.

    Example:
        >>> build_key().startswith("aimc_kernels_")
        True
    """
    env = _environment() if env is None else env
    text = "\n".join([*_sources(), " ".join(CFLAGS), " ".join(LDFLAGS), *(f"{k}={env[k]}" for k in sorted(env))])
    return f"aimc_kernels_{hashlib.sha1(text.encode()).hexdigest()[:12]}"


def build_directory(name: str | None = None) -> str:
    """Folder of the build named ``name`` (default :func:`build_key`): ``$TORCH_EXTENSIONS_DIR/name``."""
    from torch.utils.cpp_extension import get_default_build_root

    root = os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()
    return os.path.join(root, name or build_key())


def is_built(name: str | None = None) -> bool:
    """True when the shared library of build ``name`` is already in its folder (no compile)."""
    name = name or build_key()
    return os.path.exists(os.path.join(build_directory(name), f"{name}.so"))


def _build(name: str):
    """Compile (or load the cached) extension ``name``; say so when it must compile."""
    from torch.utils.cpp_extension import load_inline

    folder = build_directory(name)
    cold = not is_built(name)
    if cold:
        log.warning("aimc: compiling C++ kernels (once, ~30-60 s) into %s ...", folder,
                    extra={"progress": "compiling C++ kernels"})
    t0 = time.perf_counter()
    os.makedirs(folder, exist_ok=True)
    mod = load_inline(name=name, cpp_sources=_sources(), functions=[f for p in _PARTS for f in p.FUNCTIONS],
                      extra_cflags=CFLAGS, extra_ldflags=LDFLAGS, build_directory=folder, verbose=False)
    if cold:
        log.info("aimc: C++ kernels compiled in %.0f s", time.perf_counter() - t0, extra={"progress": "kernels compiled"})
    return mod


def load():
    """The compiled extension, or None (compiled once per process; a failure warns once)."""
    global _module, _failed
    if _module is not None or _failed:
        return _module
    if os.environ.get("AIMC_NO_CPP", "") == "1":
        return None
    with _lock:
        if _module is None and not _failed:
            try:
                _module = _build(build_key())
            except Exception as exc:  # no compiler, no headers, ...: use the PyTorch path
                _failed = True
                warnings.warn(f"aimc: C++ kernels unavailable ({type(exc).__name__}: {exc}); "
                              "using the PyTorch fallback", RuntimeWarning, stacklevel=3)
    return _module


def available() -> bool:
    """True when the compiled kernels can be used (compiles them on first call)."""
    return load() is not None
