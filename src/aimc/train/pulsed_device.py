"""Pulsed analog device models: the :class:`PulsedDevice` config and its :data:`PULSED_PRESETS`.

Weights are in normalised units (aihwkit's convention): one device per weight, ``w`` in
``[w_min, w_max]``, changed in place only by voltage pulses. Per pulse (``+``: up, the
weight grows; ``-``: down), with per-device step scales ``dw_up = dw_min_dev*(1+up_down)``
and ``dw_down = dw_min_dev*(1-up_down)``:

* ``constant_step``: ``dw = ±dw_up|down``;
* ``soft_bounds`` (Fuller et al. Adv. Mater. 2017; aihwkit ``SoftBoundsDevice``):
  ``dw_+ = dw_up*(1 - w/w_max)``, ``dw_- = dw_down*(1 - w/w_min)`` (needs w_min < 0 < w_max);
* ``linear_step`` (aihwkit ``LinearStepDevice``, bounds of the config as reference):
  ``dw_+ = dw_up*(1 - gamma_up*w/w_max)``, ``dw_- = dw_down*(1 - gamma_down*w/w_min)``;
* ``exp_step`` (aihwkit ``ExpStepDevice``, fit to Gong et al. Nat. Commun. 9, 2102 (2018)):
  ``z = 2*es_a*w/(w_max - w_min) + es_b``, ``dw_+ = dw_up*max(1 - es_A_up*exp(es_gamma_up*z), 0)``,
  ``dw_- = dw_down*max(1 - es_A_down*exp(-es_gamma_down*z), 0)``.

Every pulse's step is multiplied by ``1 + dw_min_std*z`` (cycle-to-cycle, ``z ~ N(0,1)``
fresh per pulse) and the result is clipped to the device's bounds. Device-to-device draws
(once, at construction): ``dw_min_dev = dw_min*max(1 + dw_min_dtod*z1, 0)``,
``w_max_dev = w_max*max(1 + w_bound_dtod*z2, 0.05)``, same for ``w_min_dev`` with ``z3``.
Note: aihwkit biases only one direction (``up_down>0`` shrinks the down step); here the
asymmetry is centred, ``dw_min*(1±up_down)``; presets below are converted accordingly.

:class:`aimc.train.pulsed.PulsedArray` draws the device-to-device parameters and applies
the pulses; this module describes and validates them.

Example:
    >>> PULSED_PRESETS["ecram"].kind
    'linear_step'
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from aimc.config import BaseConfig

__all__ = ["PulsedDevice", "PULSED_PRESETS"]


class PulsedDevice(BaseConfig):
    """Pulse response of one analog device kind; formulas in the module doc.

    Attributes:
        kind: ``constant_step``, ``soft_bounds``, ``linear_step`` or ``exp_step``.
        dw_min: nominal step per pulse (normalised weight units).
        w_max, w_min: weight bounds (normalised units).
        up_down: centred asymmetry, up step ``dw_min*(1+up_down)``, down ``dw_min*(1-up_down)``.
        dw_min_dtod: relative device-to-device spread of ``dw_min``.
        dw_min_std: relative cycle-to-cycle spread of each pulse's step.
        w_bound_dtod: relative device-to-device spread of both bounds.
        gamma_up, gamma_down: slopes of ``linear_step``.
        es_*: ``exp_step`` parameters (aihwkit names).
    """

    kind: Literal["constant_step", "soft_bounds", "linear_step", "exp_step"] = "constant_step"
    dw_min: float = Field(0.001, gt=0.0, le=1.0)
    w_max: float = Field(1.0, le=1e3)
    w_min: float = Field(-1.0, ge=-1e3)
    up_down: float = Field(0.0, gt=-1.0, lt=1.0)
    dw_min_dtod: float = Field(0.0, ge=0.0, le=10.0)
    dw_min_std: float = Field(0.0, ge=0.0, le=100.0)
    w_bound_dtod: float = Field(0.0, ge=0.0, le=10.0)
    gamma_up: float = Field(0.0, ge=0.0, le=1.0)
    gamma_down: float = Field(0.0, ge=0.0, le=1.0)
    es_A_up: float = 0.00081
    es_A_down: float = 0.36833
    es_gamma_up: float = Field(12.44625, ge=0.0, le=100.0)
    es_gamma_down: float = Field(12.78785, ge=0.0, le=100.0)
    es_a: float = 0.244
    es_b: float = 0.2425

    @model_validator(mode="after")
    def _check_bounds(self):
        if not self.w_min < self.w_max:
            raise ValueError(f"w_min ({self.w_min}) must be < w_max ({self.w_max})")
        if self.kind in ("soft_bounds", "linear_step") and not self.w_min < 0.0 < self.w_max:
            raise ValueError(f"kind {self.kind!r} needs w_min < 0 < w_max (got w_min={self.w_min}, w_max={self.w_max})")
        return self


PULSED_PRESETS: dict[str, PulsedDevice] = {
    # aihwkit IdealizedPresetDevice: Gokmen & Vlasov 2016 specs with 10000 states (Rasch,
    # Gokmen & Haensch, IEEE Design & Test 2019).
    "idealized": PulsedDevice(kind="constant_step", dw_min=0.0002, w_max=1.0, w_min=-1.0,
                              dw_min_dtod=0.3, dw_min_std=0.3, w_bound_dtod=0.3),
    # aihwkit GokmenVlasovPresetDevice: ~1200 states (Gokmen & Vlasov, Front. Neurosci. 2016).
    "gokmen_vlasov": PulsedDevice(kind="constant_step", dw_min=0.0016, w_max=1.0, w_min=-1.0,
                                  dw_min_dtod=0.3, dw_min_std=0.3, w_bound_dtod=0.3),
    # aihwkit ReRamSBPresetDevice: loose soft-bounds fit to Gong et al. 2018, symmetry point
    # calibrated to 0; aihwkit's w_max_dtod 0.24 / w_min_dtod 0.4 -> one value 0.24 here.
    "reram_sb": PulsedDevice(kind="soft_bounds", dw_min=0.002, w_max=1.25, w_min=-0.75,
                             dw_min_dtod=0.3, dw_min_std=3.75, w_bound_dtod=0.24),
    # aihwkit ReRamESPresetDevice (Gong et al. 2018); aihwkit's dw_min 0.00135 with one-sided
    # up_down 0.259359 (up 1.0x, down 0.741x) == centred dw_min 0.0011749, up_down 0.14900.
    "reram_es": PulsedDevice(kind="exp_step", dw_min=0.0011749, up_down=0.14900, w_max=1.0,
                             w_min=-1.0, dw_min_dtod=0.2, dw_min_std=5.0, w_bound_dtod=0.3,
                             es_a=-0.5, es_b=-0.5, es_gamma_up=5.0, es_gamma_down=5.0,
                             es_A_up=-1.18445, es_A_down=-0.081404),
    # aihwkit EcRamPresetDevice: Li-ion ECRAM, Tang et al. IEDM 2018, ~1000 states,
    # range shifted so the symmetry point is 0.
    "ecram": PulsedDevice(kind="linear_step", dw_min=0.002, w_max=1.1724, w_min=-0.8276,
                          gamma_up=0.1153, gamma_down=0.5085, dw_min_dtod=0.1,
                          dw_min_std=0.3, w_bound_dtod=0.05),
}
