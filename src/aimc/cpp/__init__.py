"""aimc's compiled CPU kernels: one C++ extension, built on first use.

The sources are Python strings (:mod:`aimc.cpp.rng`, the shared counter-based normal
generator; :mod:`aimc.cpp.tile`, the tile read's noise + ADC kernel; :mod:`aimc.cpp.tile_conv`, its
convolution front end; :mod:`aimc.cpp.hat` and
:mod:`aimc.cpp.hat_conv`, the fused hardware-aware-training read, and
:mod:`aimc.cpp.hat_autograd`, its autograd nodes). :func:`load` compiles them together with
``torch.utils.cpp_extension.load_inline`` (cached by a hash of the sources and flags, so a
second process loads the cached build). Where no compiler is available, or with the
environment variable ``AIMC_NO_CPP=1``, :func:`load` returns None (warning once when a
build fails) and every caller runs its pure-PyTorch path instead.

Example:
    >>> from aimc import cpp
    >>> isinstance(cpp.available(), bool)
    True
"""
from __future__ import annotations

import hashlib
import os
import threading
import warnings

from aimc.cpp import hat, hat_autograd, hat_conv, rng, tile, tile_conv

__all__ = ["load", "available", "CFLAGS"]

# Flags: no -ffast-math (it would break NaN propagation and the exact rounding);
# -fno-math-errno / -fno-trapping-math let GCC vectorise sqrt and nearbyint;
# -ffp-contract=off keeps sums bit-identical to the PyTorch fallbacks
# (the polynomials use explicit std::fma).
CFLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off", "-fopenmp"]

_PARTS = (tile, tile_conv, hat, hat_conv, hat_autograd)
_lock = threading.Lock()
_module = None
_failed = False


def _sources() -> list[str]:
    return [rng.SOURCE, *(p.SOURCE for p in _PARTS)]  # one unit; the bindings come last


def _ext_name() -> str:
    h = hashlib.sha1(("".join(_sources()) + " ".join(CFLAGS)).encode()).hexdigest()[:12]
    return f"aimc_kernels_{h}"


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
                from torch.utils.cpp_extension import load_inline

                _module = load_inline(
                    name=_ext_name(),
                    cpp_sources=_sources(),
                    functions=[f for p in _PARTS for f in p.FUNCTIONS],
                    extra_cflags=CFLAGS,
                    extra_ldflags=["-fopenmp"],
                    verbose=False,
                )
            except Exception as exc:  # no compiler, no headers, ...: use the PyTorch path
                _failed = True
                warnings.warn(f"aimc: C++ kernels unavailable ({type(exc).__name__}: {exc}); "
                              "using the PyTorch fallback", RuntimeWarning, stacklevel=3)
    return _module


def available() -> bool:
    """True when the compiled kernels can be used (compiles them on first call)."""
    return load() is not None
