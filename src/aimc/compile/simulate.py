"""Run an assignment in the simulator: analog layers converted, programmed, drifted and
compensated on the chip, digital layers exact.

Used by the ``sensitivity`` policy (one layer analog at a time, then whole assignments)
and by ``aimc run`` (a plan over seeds and drift times). Each seed is one chip: its
programming noise is drawn with that seed (:func:`aimc.nn.program`); reads draw their own
noise from a stream seeded by the programming seed and the time.

:func:`drop_bound` turns per-chip, per-image outcomes into an upper confidence bound of
the accuracy drop against floating point, the quantity the ``sensitivity`` budget is
enforced on.

Example:
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> x, y = torch.randn(32, 4), torch.zeros(32, dtype=torch.long)
    >>> accs = evaluate(net, "ideal", {"0", "2"}, x, y, seeds=[0], times_s=[86400.0])
    >>> accs[0][0] == float((net(x).argmax(1) == y).float().mean())   # ideal chip = exact
    True
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from aimc.chips import ChipSpec
from aimc.nn.convert import compensate, convert, drift, program
from aimc.train.digital import correct

__all__ = ["Calibration", "DropBound", "analog_filter", "drop_bound", "evaluate", "evaluate_correct", "on_chip"]


@dataclass
class Calibration:
    """What the ``sensitivity`` policy measures on: the digital ``model`` and labelled
    calibration data ``x``, ``y`` (named ``data`` in the plan)."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    data: str = "calibration"


def analog_filter(analog: set[str]):
    """``convert``'s filter for an assignment: a module runs analog when its name is
    assigned analog, or when it holds assigned sub-matrices (a recurrent layer's
    ``name.l0.ih``: its matrices are converted together)."""
    def keep(name: str, module: nn.Module) -> bool:
        return name in analog or any(a.startswith(name + ".") for a in analog)

    return keep


def on_chip(model: nn.Module, chip: ChipSpec | str, analog: set[str]) -> nn.Module:
    """A copy of ``model`` whose layers named in ``analog`` run on ``chip``'s tiles."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # layers outside the assignment stay digital on purpose
        return convert(model, chip, filter=analog_filter(analog))


def evaluate_correct(model: nn.Module, chip: ChipSpec | str, analog: set[str], x: torch.Tensor, y: torch.Tensor,
                     seeds: Sequence[int], times_s: Sequence[float], compensated: bool = True) -> torch.Tensor:
    """Per time, chip and sample, whether ``model`` with the layers named in ``analog`` on
    ``chip`` answers right: a bool tensor ``(times, seeds, N)`` (arguments as
    :func:`evaluate`; without analog layers, the exact answers repeated)."""
    if not analog:
        return correct(model, x, y).expand(len(times_s), len(seeds), len(x))
    sim = on_chip(model, chip, analog).eval()
    out = torch.zeros(len(times_s), len(seeds), len(x), dtype=torch.bool)
    for k, seed in enumerate(seeds):
        program(sim, seed=int(seed))
        for i, t in enumerate(times_s):
            drift(sim, float(t))
            compensate(sim, enable=compensated)
            out[i, k] = correct(sim, x, y, batch_size=256)
    return out


def evaluate(model: nn.Module, chip: ChipSpec | str, analog: set[str], x: torch.Tensor, y: torch.Tensor,
             seeds: Sequence[int], times_s: Sequence[float], compensated: bool = True) -> list[list[float]]:
    """Accuracy of ``model`` with the layers named in ``analog`` on ``chip``.

    Args:
        model: the digital model (not modified).
        chip: the chip of the analog layers.
        analog: names (module paths) of the layers that run analog; empty: all digital.
        x, y: labelled data.
        seeds: one chip per seed (programming noise).
        times_s: times since programming, seconds.
        compensated: apply global drift compensation at each time.

    Returns:
        ``[time][seed]`` top-1 accuracies in [0, 1]; without analog layers, the exact
        accuracy repeated.
    """
    ok = evaluate_correct(model, chip, analog, x, y, seeds, times_s, compensated)
    return [[int(c.sum()) / len(x) for c in row] for row in ok]


@dataclass(frozen=True)
class DropBound:
    """The accuracy drop of a plan against floating point on calibration data (fractions):
    its ``mean`` over chips and images, the ``se`` of that mean with ``df`` degrees of
    freedom, and ``upper``, the one-sided upper confidence bound at ``confidence``
    (:func:`drop_bound`)."""

    mean: float
    se: float
    df: float
    upper: float
    confidence: float


def drop_bound(fp_correct: torch.Tensor, plan_correct: torch.Tensor, confidence: float) -> DropBound:
    """Upper confidence bound of the accuracy drop of a plan, for a new chip and new data.

    With ``d[s, i] = fp_correct[i] - plan_correct[s, i]`` (1: the plan loses image ``i``
    on chip ``s``, -1: it gains it), the drop is ``D = mean(d)`` over ``S`` chips and ``N``
    images. Chips and images are both samples (two-way random effects), so
    ``Var(D) = σ_chip²/S + σ_image²/N + σ_res²/(S N)``; the standard error used is

        se² = v_chip + v_image,  v_chip = var_s(mean_i d[s, i]) / S,  v_image = var_i(mean_s d[s, i]) / N

    (sample variances, ddof 1), whose expectation exceeds ``Var(D)`` by ``σ_res²/(S N)``.
    ``t`` is the one-sided Student-t quantile of ``confidence`` at the Welch-Satterthwaite
    degrees of freedom ``df = se⁴ / (v_chip²/(S-1) + v_image²/(N-1))`` (with few chips
    the chip term is itself uncertain and ``df`` is near ``S - 1``; Satterthwaite,
    Biometrics Bulletin 2, 110, 1946).

    Lost images are rare events whose variance grows with their rate, so the Wald bound
    ``D + t se`` is too low exactly when ``D`` came out low: in a simulated two-way model
    (5 chips x 360 images, true drop 1 point) it covered the truth in 84 % of trials at
    90 % and 88 % at 95 %. The bound used is the score (Wilson-type) one: with the
    variance taken proportional to the drop, ``se²(D₀) = se² D₀ / D``, the largest ``D₀``
    with ``(D₀ - D) / se(D₀) <= t``,

        upper = ((c + sqrt(c² + 4 D)) / 2)²,  c = t se / sqrt(D),

    which is never below ``D + t se`` and covered 89-98 % (nominal 90 / 95 %) over 3-10
    chips and three loss patterns (``tests/compile/test_drop_bound.py``). When ``D <= 0``
    (the plan gains as many images as it loses) the Wald bound ``D + t se`` is used. A
    plan that loses no image on any chip has ``se = 0``; its loss rate is then bounded by
    the exact binomial (Clopper-Pearson) bound for zero events in ``S N`` trials,
    ``1 - (1 - confidence)^(1/(S N))`` (about ``3/(S N)`` at 95 %), added to ``D`` (its
    gains). ``confidence = 0.5`` gives ``t = 0``: the point estimate.

    Args:
        fp_correct: ``(N,)`` bool, the floating-point model right on each image.
        plan_correct: ``(S, N)`` bool, the plan right on each image on each chip.
        confidence: one-sided confidence level in [0.5, 1).

    Raises:
        ValueError: shapes that do not match, a confidence outside [0.5, 1), or a single
            chip with ``confidence > 0.5`` (the chip-to-chip spread is not measured).

    Example:
        >>> import torch
        >>> fp = torch.ones(100, dtype=torch.bool)
        >>> plan = fp.expand(4, 100).clone(); plan[0, :2] = False   # chip 0 loses 2 images
        >>> b = drop_bound(fp, plan, 0.5)
        >>> round(b.mean, 6), b.upper == b.mean
        (0.005, True)
        >>> drop_bound(fp, plan, 0.95).upper > b.mean
        True
    """
    from scipy.stats import t as student_t

    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"confidence must lie in [0.5, 1), got {confidence!r}")
    if plan_correct.ndim != 2 or fp_correct.shape != plan_correct.shape[1:]:
        raise ValueError(f"drop_bound: plan_correct must be (chips, {tuple(fp_correct.shape)}), "
                         f"got {tuple(plan_correct.shape)}")
    s_chips, n = plan_correct.shape
    if s_chips < 2 and confidence > 0.5:
        raise ValueError("a confidence bound needs at least 2 chips (--seeds >= 2) to measure the chip-to-chip "
                         "spread; or use the point estimate (--confidence 0.5)")
    d = fp_correct.double()[None, :] - plan_correct.double()
    mean = float(d.mean())
    v_chip = float(d.mean(1).var()) / s_chips if s_chips > 1 else 0.0
    v_image = float(d.mean(0).var()) / n if n > 1 else 0.0
    se = (v_chip + v_image) ** 0.5
    den = (v_chip ** 2 / (s_chips - 1) if s_chips > 1 else 0.0) + (v_image ** 2 / (n - 1) if n > 1 else 0.0)
    df = (v_chip + v_image) ** 2 / den if den > 0 else float("inf")
    q = 0.0 if confidence == 0.5 or se == 0.0 else float(student_t.ppf(confidence, df))
    if confidence > 0.5 and not bool((d > 0).any()):  # nothing lost: the zero-event binomial bound
        upper = mean + 1.0 - (1.0 - confidence) ** (1.0 / (s_chips * n))
    elif mean > 0.0 and q > 0.0:
        c = q * se / mean ** 0.5
        upper = ((c + (c * c + 4.0 * mean) ** 0.5) / 2.0) ** 2
    else:
        upper = mean + q * se
    return DropBound(mean=mean, se=se, df=df, upper=upper, confidence=confidence)
