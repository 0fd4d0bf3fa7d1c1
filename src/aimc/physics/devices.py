"""Device-model interface and registry; the ideal device.

A device model turns target conductances into programmed ones (programming noise,
level quantisation, faults), evolves them in time (drift, retention) and says how noisy
one read is. Units: conductance in microsiemens (``_uS``), time in seconds (``_s``).

Every model is a frozen config whose ``kind`` selects it from :data:`DEVICES`; YAML chip
specs name it as ``device: {kind: pcm, ...}``.

Example:
    >>> import torch
    >>> from aimc.physics.devices import DEVICES
    >>> dev = DEVICES.get("ideal")()
    >>> st = dev.program(torch.tensor([1.0, 2.0]), torch.Generator().manual_seed(0))
    >>> st.g_uS.tolist()
    [1.0, 2.0]
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from pydantic import Field, model_validator

from aimc.config import BaseConfig
from aimc.registry import Registry

__all__ = ["DEVICES", "DeviceModel", "DeviceState", "Ideal", "quantise_to_levels"]

DEVICES: Registry[type["DeviceModel"]] = Registry("device model")


class DeviceState(NamedTuple):
    """Per-device programmed state.

    Attributes:
        g_uS: conductance right after programming (at the reference time ``t0``).
        drift: per-device time-evolution parameter: the drift exponent nu for PCM, a
            standard-normal relaxation draw for RRAM retention, zeros otherwise.
    """

    g_uS: torch.Tensor
    drift: torch.Tensor


def quantise_to_levels(g_uS: torch.Tensor, g_min_uS: float, g_max_uS: float, n_levels: int) -> torch.Tensor:
    """Round conductances to ``n_levels`` equally spaced levels in [g_min, g_max]."""
    step = (g_max_uS - g_min_uS) / (n_levels - 1)
    k = torch.round((g_uS - g_min_uS) / step).clamp_(0, n_levels - 1)
    return g_min_uS + k * step


class DeviceModel(BaseConfig):
    """Interface of all device models.

    Attributes:
        g_max_uS: largest programmable conductance (µS).
        g_min_uS: conductance of a device programmed to "zero" (µS).
    """

    kind: str
    g_max_uS: float = Field(25.0, gt=0.0, le=1e6)
    g_min_uS: float = Field(0.0, ge=0.0)

    @model_validator(mode="after")
    def _check_range(self):
        if self.g_min_uS >= self.g_max_uS:
            raise ValueError(
                f"g_min_uS ({self.g_min_uS}) must be below g_max_uS ({self.g_max_uS})"
            )
        return self

    # -- interface -------------------------------------------------------------------
    def program(self, g_target_uS: torch.Tensor, generator: torch.Generator) -> DeviceState:
        """Write target conductances; returns the programmed state (noise drawn once)."""
        raise NotImplementedError

    def program_chips(self, g_target_uS: torch.Tensor, generators: Sequence[torch.Generator]) -> DeviceState:
        """The same targets written on ``len(generators)`` chips, chip ``c`` drawing from
        ``generators[c]`` exactly as :meth:`program` does -> state ``(C, *shape)``, chip
        ``c`` bit-identical to ``program(g_target_uS, generators[c])``. Models override it
        to compute what depends on the targets alone once for all chips (a model that
        overrides :meth:`program` must override this too)."""
        states = [self.program(g_target_uS, gen) for gen in generators]
        return DeviceState(torch.stack([s.g_uS for s in states]), torch.stack([s.drift for s in states]))

    def at_time(self, state: DeviceState, t_s: float) -> torch.Tensor:
        """Conductance ``t_s`` seconds after programming (deterministic given the state)."""
        return state.g_uS

    def read_noise_std_uS(self, state: DeviceState, t_s: float,
                          g_t_uS: torch.Tensor | None = None) -> torch.Tensor | None:
        """Standard deviation (µS) of one read of each device ``t_s`` seconds after
        programming; None when reads are noiseless.

        Args:
            state: the programmed state (conductance at programming, drift parameters):
                noise models that depend on the programmed conductance (PCM's 1/f noise
                amplitude, Joshi et al. 2020) take it from ``state.g_uS``.
            t_s: seconds since programming.
            g_t_uS: the conductance at ``t_s``, ``at_time(state, t_s)``, when the caller
                has it already (saves recomputing the drift); computed when None.
        """
        return None

    @property
    def is_exact(self) -> bool:
        """True when programming and reads are noise-free and unquantised."""
        return False

    def prog_noise_rel_min(self) -> float:
        """A lower bound, over the conductances a device is programmed to, of the std of its
        programming noise relative to the conductance (0: none, or no bound known). A lean
        layer keeps its read matrix in bfloat16 (relative rounding 2^-9) only where this is
        at least ten times that (:mod:`aimc.nn.base`)."""
        return 0.0


@DEVICES.register("ideal")
class Ideal(DeviceModel):
    """Ideal device: conductance equals its target exactly, forever, without noise."""

    kind: str = "ideal"

    def program(self, g_target_uS, generator):
        return DeviceState(g_target_uS.clone(), torch.zeros_like(g_target_uS))

    @property
    def is_exact(self) -> bool:
        return True
