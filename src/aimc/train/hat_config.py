"""Settings of hardware-aware training (:mod:`aimc.train.hat` describes the read they
configure) and the named presets.

Example:
    >>> from aimc.train.hat_config import HAT_PRESETS, HATConfig
    >>> HATConfig().noise_scale, HAT_PRESETS["afm"].clip_sigma
    (2.0, 2.5)
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from aimc.config import BaseConfig

__all__ = ["HATConfig", "HAT_PRESETS"]


class HATConfig(BaseConfig):
    """Settings of hardware-aware training.

    The defaults are the recipe measured in the README (Fashion-MNIST CNN on pcm-hermes):
    device noise x 2 and expected drift at times from 1 hour to 1 year.

    Attributes:
        weight_noise: ``device``: the chip's device statistics at ``t_eval_s`` (module doc),
            times ``noise_scale``; ``gaussian_channel``: additive Gaussian noise of std
            ``noise_scale`` times each output channel's largest |weight| (aihwkit
            ``ADD_NORMAL_PER_CHANNEL``, used for IBM's Analog Foundation Models).
        noise_scale: multiplier of the weight noise (0: quantisation only).
        t_eval_s: time after programming whose device statistics are trained for.
        t_eval_max_s: if set, train for times drawn log-uniformly in [t_eval_s, t_eval_max_s].
        time_draw: with ``t_eval_max_s``: ``pass``, one time per forward pass of the model
            given to :func:`enable_hat`, shared by all its layers (a chip's layers were
            programmed together); ``layer``, an independent time for each layer and pass.
        expected_drift: apply the device's expected, compensated drift of each weight
            (``weight_noise="device"`` only; module doc).
        clip_sigma: after every step, clip each output channel's stored weights at this
            many of its standard deviations (None: no clipping).
        clip_value: clip the stored weights to ``[-clip_value, clip_value]`` (None: no clip).
        quantize_io: train through the chip's DAC/ADC quantisation and output noise.
        input_range: ``dynamic``: the chip's own input scaling (per-vector abs-max);
            ``learned``: a static per-layer DAC full scale ``r``, set from the first
            training batch's abs-max and learned (gradient of the clipped inputs, plus
            ``input_range_decay * r`` while more than ``input_min_fraction`` of inputs are
            inside the range, as aihwkit's ``InputRangeParameter``); the chip then uses it.
        learn_out_scales: train each analog layer's per-column digital ``out_gain``.
        out_noise: std of the additive output noise trained with, in the units of the
            chip's ``noise.out_noise`` (None: the chip's own).
    """

    weight_noise: Literal["device", "gaussian_channel"] = "device"
    noise_scale: float = Field(2.0, ge=0.0, le=100.0)
    t_eval_s: float = Field(3600.0, ge=0.0)
    t_eval_max_s: float | None = Field(31_536_000.0, gt=0.0)
    time_draw: Literal["pass", "layer"] = "pass"
    expected_drift: bool = True
    clip_sigma: float | None = Field(None, gt=0.0)
    clip_value: float | None = Field(None, gt=0.0)
    quantize_io: bool = True
    input_range: Literal["dynamic", "learned"] = "dynamic"
    input_range_decay: float = Field(0.01, ge=0.0, le=1.0)
    input_min_fraction: float = Field(0.95, ge=0.0, le=1.0)
    learn_out_scales: bool = False
    out_noise: float | None = Field(None, ge=0.0, le=100.0)

    @model_validator(mode="after")
    def _check_times(self):
        if self.t_eval_max_s is not None and not self.t_eval_max_s > self.t_eval_s:
            raise ValueError(f"t_eval_max_s ({self.t_eval_max_s}) must be > t_eval_s ({self.t_eval_s}); "
                             "set t_eval_max_s=None to train for t_eval_s alone")
        return self


#: Named settings. ``afm``: IBM's Analog Foundation Models (Büchel et al., arXiv:2505.09663
#: (2025); training config of github.com/IBM/analog-foundation-models): per-channel Gaussian
#: weight noise of 3 % of the channel's abs-max, per-channel clipping at 2.5 sigma, static
#: learned 8-bit input ranges (decay 0.01, 95 %) and the chip's 8-bit ADC (AFM: 254
#: levels, out_bound 14; here the chip's own bound), no output noise beyond the chip's.
#: ``kernel-lra``: the hardware-aware fine-tuning of Büchel, Camposampiero et al. (Nat. Mach.
#: Intell. 2024; experiments/lra/aihwkit_training.py of github.com/IBM/kernel-approximation-
#: using-analog-in-memory-computing): additive Gaussian weight noise of 0.12 x max|W| drawn
#: anew each pass (theirs: per tensor and per sample; here per output channel, the chip's
#: scaling, and per pass), output noise 0.1, weights clipped at 2 sigma, learned static
#: 8-bit input ranges (decay 0.5, 95 %); DAC and ADC are the chip's.
HAT_PRESETS: dict[str, HATConfig] = {
    "default": HATConfig(),
    "afm": HATConfig(weight_noise="gaussian_channel", noise_scale=0.03, clip_sigma=2.5,
                     input_range="learned", input_range_decay=0.01, input_min_fraction=0.95),
    "kernel-lra": HATConfig(weight_noise="gaussian_channel", noise_scale=0.12, t_eval_max_s=None, clip_sigma=2.0,
                            input_range="learned", input_range_decay=0.5, input_min_fraction=0.95, out_noise=0.1),
}
