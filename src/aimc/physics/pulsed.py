"""Pulsed-update device models: how a device's weight responds to programming pulses.

Inference device models (:data:`aimc.physics.DEVICES`) say what a programmed conductance
reads as; this module says how a weight stored on a device moves, pulse by pulse, during
on-chip training. A chip spec carries both: ``device:`` and ``pulsed:``
(:class:`~aimc.chips.ChipSpec`). The update algorithms (stochastic pulse trains,
Tiki-Taka, mixed precision) are in :mod:`aimc.train.pulsed` and
:mod:`aimc.train.pulsed_optim`; they take their device from here.

Weights are in normalised units (aihwkit's convention, Rasch et al., AICAS 2021,
arXiv:2104.02184): one device per weight, ``w`` in ``[w_min, w_max]``, changed in place
only by voltage pulses. Per pulse (``+``: up, the weight grows; ``-``: down), with
per-device step scales ``dw_up = dw_min_dev*(1+up_down)`` and
``dw_down = dw_min_dev*(1-up_down)``:

* ``constant_step``: ``dw = ±dw_up|down`` (Gokmen & Vlasov, Front. Neurosci. 10:333 (2016));
* ``soft_bounds`` (Fuller et al., Adv. Mater. 29, 1604310 (2017); Gokmen & Haensch,
  Front. Neurosci. 14:103 (2020); aihwkit ``SoftBoundsDevice``):
  ``dw_+ = dw_up*(1 - w/w_max)``, ``dw_- = dw_down*(1 - w/w_min)`` (needs w_min < 0 < w_max);
* ``linear_step`` (aihwkit ``LinearStepDevice``, bounds of the config as reference, aihwkit's
  ``mean_bound_reference``): ``dw_+ = dw_up*(1 - gamma_up*w/w_max)``,
  ``dw_- = dw_down*(1 - gamma_down*w/w_min)``;
* ``exp_step`` (aihwkit ``ExpStepDevice``, fit to Gong et al., Nat. Commun. 9, 2102 (2018)):
  ``z = 2*es_a*w/(w_max - w_min) + es_b``, ``dw_+ = dw_up*max(1 - es_A_up*exp(es_gamma_up*z), 0)``,
  ``dw_- = dw_down*max(1 - es_A_down*exp(-es_gamma_down*z), 0)``.

Cycle-to-cycle variation: every pulse's step is multiplied by ``1 + dw_min_std*z``
(``z ~ N(0,1)`` fresh per pulse) and the result is clipped to the device's bounds.
Device-to-device variation (drawn once, :func:`draw_devices`):
``dw_min_dev = dw_min*max(1 + dw_min_dtod*z1, 0)``, ``w_max_dev = w_max*max(1 +
w_bound_dtod*z2, 0.05)``, same for ``w_min_dev`` with ``z3`` (at most ``w_max_dev``).
Note: aihwkit biases only one direction (``up_down>0`` shrinks the down step); here the
asymmetry is centred, ``dw_min*(1±up_down)``; :data:`PULSED_PRESETS` are converted.

Example:
    >>> import torch
    >>> dev = PULSED_PRESETS["reram_sb"]
    >>> draws = draw_devices(dev.replace(dw_min_dtod=0.0, w_bound_dtod=0.0), (1, 1), torch.Generator())
    >>> up, down = step_sizes(dev, torch.zeros(1, 1), draws)
    >>> round(float(up), 6), round(float(down), 6)  # equal at w = 0: the symmetry point
    (0.002, 0.002)
"""
from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from pydantic import Field, model_validator

from aimc.config import BaseConfig

__all__ = ["PulsedDevice", "PULSED_PRESETS", "DeviceDraws", "draw_devices", "step_sizes", "linear_coefficients",
           "linear_response", "midpoint_response", "one_pulse", "symmetry_point", "VAR_FLOOR"]

#: floor of a variance before its square root: sqrt(0) takes a slow path on some CPUs, and
#: 1e-30 adds a standard deviation of 1e-15 (counts or weight units), far below float32.
VAR_FLOOR = 1e-30


class PulsedDevice(BaseConfig):
    """Pulse response of one analog device kind; formulas and sources in the module doc.

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

    Example:
        >>> dev = PulsedDevice.from_dict({"kind": "soft_bounds", "dw_min": 0.002, "up_down": 0.1})
        >>> round(dev.dw_min * (1 + dev.up_down), 6), round(dev.dw_min * (1 - dev.up_down), 6)  # up, down
        (0.0022, 0.0018)
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


#: Named fits (aihwkit 0.9 ``presets.devices``, converted to the centred ``up_down``). The
#: chip presets ``rram-1t1r`` and ``ecram`` carry ``reram_sb`` and ``ecram`` in their
#: ``pulsed:`` section.
PULSED_PRESETS: dict[str, PulsedDevice] = {
    # aihwkit IdealizedPresetDevice: Gokmen & Vlasov 2016 specs with 10000 states (Rasch,
    # Gokmen & Haensch, IEEE Design & Test 2019).
    "idealized": PulsedDevice(kind="constant_step", dw_min=0.0002, w_max=1.0, w_min=-1.0,
                              dw_min_dtod=0.3, dw_min_std=0.3, w_bound_dtod=0.3),
    # aihwkit GokmenVlasovPresetDevice: ~1200 states (Gokmen & Vlasov, Front. Neurosci. 2016).
    "gokmen_vlasov": PulsedDevice(kind="constant_step", dw_min=0.0016, w_max=1.0, w_min=-1.0,
                                  dw_min_dtod=0.3, dw_min_std=0.3, w_bound_dtod=0.3),
    # aihwkit ReRamSBPresetDevice: loose soft-bounds fit to Gong et al. 2018, symmetry point
    # calibrated to 0; aihwkit's w_max_dtod 0.24 / w_min_dtod 0.4 -> one value 0.24 here
    # (its up_down_dtod 0.01 and write noise are not modelled).
    "reram_sb": PulsedDevice(kind="soft_bounds", dw_min=0.002, w_max=1.25, w_min=-0.75,
                             dw_min_dtod=0.3, dw_min_std=3.75, w_bound_dtod=0.24),
    # aihwkit ReRamESPresetDevice (Gong et al. 2018); aihwkit's dw_min 0.00135 with one-sided
    # up_down 0.259359 (up 1.0x, down 0.741x) == centred dw_min 0.0011749, up_down 0.14900.
    "reram_es": PulsedDevice(kind="exp_step", dw_min=0.0011749, up_down=0.14900, w_max=1.0,
                             w_min=-1.0, dw_min_dtod=0.2, dw_min_std=5.0, w_bound_dtod=0.3,
                             es_a=-0.5, es_b=-0.5, es_gamma_up=5.0, es_gamma_down=5.0,
                             es_A_up=-1.18445, es_A_down=-0.081404),
    # aihwkit EcRamPresetDevice: linear-step fit to Li-ion ECRAM, Tang et al. IEDM 2018
    # (doi:10.1109/IEDM.2018.8614551), ~1000 states, range shifted so the symmetry point
    # is 0 (its gamma device-to-device spread 0.05 is not modelled).
    "ecram": PulsedDevice(kind="linear_step", dw_min=0.002, w_max=1.1724, w_min=-0.8276,
                          gamma_up=0.1153, gamma_down=0.5085, dw_min_dtod=0.1,
                          dw_min_std=0.3, w_bound_dtod=0.05),
}


class DeviceDraws(NamedTuple):
    """Per-device parameters drawn once (device-to-device variation), each (out, in) or
    any shape shared by all four: step scales ``dw_up``, ``dw_down`` and bounds
    ``w_max``, ``w_min`` (normalised units)."""

    dw_up: torch.Tensor
    dw_down: torch.Tensor
    w_max: torch.Tensor
    w_min: torch.Tensor


def draw_devices(device: PulsedDevice, shape: tuple[int, ...], generator: torch.Generator,
                 dtype: torch.dtype = torch.float32) -> DeviceDraws:
    """Draw the device-to-device parameters of ``shape`` devices (module doc), on the
    generator's device: one ``randn((3, *shape))`` draw (step scale, upper, lower bound)."""
    d = device
    z = torch.randn((3, *shape), generator=generator, dtype=dtype, device=generator.device)
    dw = d.dw_min * (1.0 + d.dw_min_dtod * z[0]).clamp(min=0.0)
    w_max = d.w_max * (1.0 + d.w_bound_dtod * z[1]).clamp(min=0.05)
    w_min = torch.minimum(d.w_min * (1.0 + d.w_bound_dtod * z[2]).clamp(min=0.05), w_max)
    return DeviceDraws(dw * (1.0 + d.up_down), dw * (1.0 - d.up_down), w_max, w_min)


def step_sizes(device: PulsedDevice, w: torch.Tensor, draws: DeviceDraws) -> tuple[torch.Tensor, torch.Tensor]:
    """Magnitudes (up, down) of one noise-free pulse at weights ``w`` (module doc formulas);
    ``draws`` has ``w``'s shape."""
    d, up, dn = device, draws.dw_up, draws.dw_down
    if d.kind == "constant_step":
        return up.expand_as(w), dn.expand_as(w)
    if d.kind == "soft_bounds":
        return up * (1.0 - w / draws.w_max), dn * (1.0 - w / draws.w_min)
    if d.kind == "linear_step":
        return up * (1.0 - d.gamma_up * w / d.w_max), dn * (1.0 - d.gamma_down * w / d.w_min)
    z = 2.0 * d.es_a * w / (draws.w_max - draws.w_min) + d.es_b
    return (up * (1.0 - d.es_A_up * torch.exp(d.es_gamma_up * z)).clamp(min=0.0),
            dn * (1.0 - d.es_A_down * torch.exp(-d.es_gamma_down * z)).clamp(min=0.0))


def linear_coefficients(device: PulsedDevice, draws: DeviceDraws) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """Signed steps linear in ``w``: ``(up, -down) = sa - sb*w`` with ``sa``, ``sb`` (2, ...).

    ``sb`` is None for ``constant_step``; the whole result is None for ``exp_step`` (not
    linear in ``w``). Both rows of ``sb`` are >= 0 (steps shrink towards the bound they move to).
    """
    d = device
    if d.kind == "exp_step":
        return None
    bu: torch.Tensor | None
    bd: torch.Tensor | None
    if d.kind == "soft_bounds":
        bu, bd = draws.dw_up / draws.w_max, draws.dw_down / draws.w_min
    elif d.kind == "linear_step":
        bu, bd = draws.dw_up * (d.gamma_up / d.w_max), draws.dw_down * (d.gamma_down / d.w_min)
    else:
        bu = bd = None
    sa = torch.stack((draws.dw_up, -draws.dw_down))
    return sa, None if bu is None or bd is None else torch.stack((bu, -bd))


def linear_response(w0: torch.Tensor, n: torch.Tensor, z: torch.Tensor | None, sa: torch.Tensor,
                    sb: torch.Tensor | None, lo: torch.Tensor, hi: torch.Tensor, std: float) -> torch.Tensor:
    """New weights after ``n`` (2, ...) (up, down) finely interleaved pulses, for steps linear
    in ``w`` (:func:`linear_coefficients`).

    The response is taken as continuous in the pulse count, ``dw/dt = A - B*w`` with ``A =
    sum(n*sa)``, ``B = sum(n*sb) >= 0``, solved exactly: ``w1 = w0 + (A - B*w0)*(1 -
    exp(-B))/B`` (``sb`` None: ``w1 = w0 + A``). Cycle-to-cycle noise: ``std *
    sqrt(sum n*step(w0)²) * z``; the result is clipped to ``[lo, hi]`` once. Any shape, as
    long as ``n``, ``sa``, ``sb`` have ``w0``'s with 2 in front.

    Example:
        >>> import torch
        >>> one = torch.ones(1)
        >>> sa, sb = torch.tensor([[0.1], [-0.1]]), torch.tensor([[0.1], [-0.1]])  # soft bounds ±1
        >>> w = linear_response(torch.zeros(1), torch.tensor([[3.0], [0.0]]), None, sa, sb, -one, one, 0.0)
        >>> round(float(w), 6) == round(1 - float(torch.exp(torch.tensor(-0.3))), 6)
        True
    """
    if sb is None:  # constant step
        st = sa
        w1 = w0 + (n * st).sum(0)
    else:  # exact solution of dw/dt = A - B*w
        st = torch.addcmul(sa, sb, w0, value=-1.0)  # (up, -down) at w0
        nb = torch.mul(n, sb).sum(0).clamp_(min=1e-6).neg_()  # -B
        w1 = torch.addcmul(w0, (n * st).sum(0), torch.expm1(nb).div_(nb))  # A - B*w0 == sum(n*st)
    if z is not None:  # sum of the pulses' step² at w0
        w1 = w1.addcmul_(n.mul(st).mul_(st).sum(0).clamp_(min=VAR_FLOOR).sqrt_(), z, value=std)
    return w1.clamp_(lo, hi)


def midpoint_response(device: PulsedDevice, w0: torch.Tensor, n: torch.Tensor, z: torch.Tensor | None,
                      draws: DeviceDraws) -> torch.Tensor:
    """As :func:`linear_response` for any response (``exp_step``): one midpoint step of
    ``dw/dt = n_up*up(w) - n_down*down(w)``, noise from the steps at ``w0``, clipped."""
    lo, hi = draws.w_min, draws.w_max
    up, dn = step_sizes(device, w0, draws)
    st = torch.stack((up, -dn))  # signed steps at w0 (2, ...)
    wm = torch.clamp(w0 + 0.5 * (n * st).sum(0), lo, hi)
    um, dm = step_sizes(device, wm, draws)
    w1 = w0 + n[0] * um - n[1] * dm
    if z is not None:
        w1 = w1.addcmul_(n.mul(st).mul_(st).sum(0).sqrt_(), z, value=device.dw_min_std)
    return w1.clamp_(lo, hi)


def one_pulse(device: PulsedDevice, w: torch.Tensor, up: torch.Tensor, z: torch.Tensor | None,
              draws: DeviceDraws) -> torch.Tensor:
    """Weights after one pulse on every device: up where ``up`` (bool) else down, the step
    times ``1 + dw_min_std*z`` (``z`` None: no cycle-to-cycle noise), clipped to the bounds."""
    u, dn = step_sizes(device, w, draws)
    dw = torch.where(up, u, -dn)
    if z is not None:
        dw = dw * (1.0 + device.dw_min_std * z)
    return torch.minimum(torch.maximum(w + dw, draws.w_min), draws.w_max)


def symmetry_point(device: PulsedDevice, draws: DeviceDraws, iters: int = 60) -> torch.Tensor:
    """Per-device weight where up and down steps are equal (bisection; a bound if none).

    For soft bounds it is ``(dw_down - dw_up)/(dw_down/w_min - dw_up/w_max)``, e.g.
    ``up_down`` itself for bounds ±1. A constant-step device has none: it returns 0 when
    symmetric, else the bound it drifts to.

    Example:
        >>> import torch
        >>> dev = PulsedDevice(kind="soft_bounds", up_down=0.2)
        >>> sp = symmetry_point(dev, draw_devices(dev, (1,), torch.Generator()))
        >>> round(float(sp), 5)
        0.2
    """
    if device.kind == "constant_step":  # every w (symmetric: take 0) or a bound
        zero = torch.zeros_like(draws.dw_up).clamp(draws.w_min, draws.w_max)
        return torch.where(draws.dw_up > draws.dw_down, draws.w_max,
                           torch.where(draws.dw_up < draws.dw_down, draws.w_min, zero))
    lo, hi = draws.w_min.clone(), draws.w_max.clone()
    for _ in range(iters):  # loop over bisection steps, vectorised over devices
        mid = 0.5 * (lo + hi)
        up, dn = step_sizes(device, mid, draws)
        grow = up > dn  # net drift upward below the symmetry point
        lo, hi = torch.where(grow, mid, lo), torch.where(grow, hi, mid)
    return 0.5 * (lo + hi)
