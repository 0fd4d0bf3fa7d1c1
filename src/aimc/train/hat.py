"""Hardware-aware training (HAT): train a converted model so that it survives the chip.

While a layer is in ``training`` mode, :class:`HATForward` replaces its tile read with a
differentiable model of the same MVM (Joshi et al., Nat. Commun. 2020; Rasch et al.,
Nat. Commun. 14, 5282 (2023)):

* weights per tile column are scaled to ``[-1, 1]`` as on the chip and get additive
  Gaussian noise of the chip's device at ``t_eval_s`` after programming, with drift
  compensated globally: per device ``var = sigma_prog(g)^2 + (g ln(t/t0) sigma_nu(g))^2
  + sigma_read(g, t)^2`` (drift spread linearised: ``Var[(t/t0)^-nu] ≈ (ln(t/t0) sigma_nu)^2``
  after the mean factor is removed by GDC), for G+ and G- of each weight, in units of
  ``g_max - g_min``; one draw per weight per forward pass; ``noise_scale`` multiplies it;
* the expected drift of each weight at ``t_eval_s`` (``expected_drift``), which a global
  factor cannot undo when the drift exponent depends on conductance (HERMES PCM: mean nu
  from 0.13 at low to 0.02 at full conductance): per device
  ``E[g(t)] = g E[(t/t0)^-nu] = g exp(-mu(g) L + sigma(g)^2 L^2 / 2)``, ``L = ln(t/t0)``
  (log-normal mean; nu's clipping at 0 ignored), weight ``(E[g+(t)] - E[g-(t)])/(g_max -
  g_min)``, divided by the layer's global drift compensation factor computed as the chip
  does (its one-hot calibration reads weighted by the programmed signs, at programming
  over after drift: ``sum |w| / sum sign(w) E[w(t)]``);
  with ``t_eval_max_s`` each forward pass of the model draws ``t`` log-uniformly, one time
  for all its layers as on a deployed chip (``time_draw="pass"``; ``"layer"``: each layer
  draws its own), from 17 times between
  ``t_eval_s`` and ``t_eval_max_s`` (noise statistics follow the same ``t`` and are taken
  at the target conductances, not rescaled by the drift);
* optional clipping of the stored weights, per output channel at ``clip_sigma`` standard
  deviations and/or at a fixed ``clip_value`` (e.g. the range a chip's conductances map to);
* inputs through the chip's DAC and each tile's partial sums through its ADC (noise
  management by abs-max, saturation at the ADC bound), with additive output noise;
  rounding passes gradients straight through (:func:`ste_round`), clamping passes them
  inside the range and blocks them outside (the clipped straight-through estimator);
* the chip's own geometry and periphery, from :mod:`aimc.tiles` (:class:`~aimc.tiles.TileLayout`,
  :class:`~aimc.tiles.Periphery`): tiling, per-column or per-tensor weight scaling,
  slices (:func:`~aimc.tiles.slice_parts`; gradients straight through the first slice),
  programming to a device's levels (:func:`~aimc.tiles.programmed_levels`, straight through),
  a fixed input scale (``dac.noise_management: none``), bound management (saturated
  vectors re-read with the input scale doubled) and first-order IR drop: the tiles'
  effective weights (:func:`~aimc.tiles.effective_weights`) at the noise-free weights,
  the noise added after; the correction is a constant of each step and gradients pass
  straight through it, as through the level rounding (the effective matrix's Jacobian is
  ``1 - O(r g N^2)``: 0.25-1.9 % on pcm-hermes's layers; the fused path computes the same
  correction inside its weight side, as :func:`aimc.train.hat_fused.ir_drop_delta` does,
  tested against this route). ``ir_drop.mode: exact`` is
  refused (:func:`check_chip`). With the noise off the read equals the chip's for every
  chip field (``tests/train/test_hat_chip_fields.py``).

Example:
    >>> import torch, aimc
    >>> from aimc.train.hat import HATConfig, enable_hat
    >>> net = aimc.convert(torch.nn.Linear(8, 2), "pcm-hermes")
    >>> enable_hat(net, HATConfig(), seed=0)
    >>> net.train()(torch.randn(4, 8)).sum().backward()
    >>> net.weight.grad.shape
    torch.Size([2, 8])
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from aimc.nn.convert import analog_layers
from aimc.tiles import Periphery, effective_weights, ir_drop_active, programmed_levels, significance, slice_parts
from aimc.train import hat_fused
from aimc.train.hat_config import HAT_PRESETS, HATConfig
from aimc.train.hat_conv_read import conv_read
from aimc.train.hat_ops import (_ADCSTE, _AddGrad, _PassClock, check_chip, clip_channels_,  # noqa: F401
                                device_weight_std, expected_drifted_weight, ste_round)

__all__ = ["HATConfig", "HAT_PRESETS", "HATForward", "enable_hat", "check_chip", "ste_round", "device_weight_std",
           "expected_drifted_weight", "clip_channels_"]


class HATForward:
    """The differentiable training-time read of an analog layer (see module doc).

    Linear layers (and any layer given as im2col rows) run the tile read as one batched
    matmul over tiles. Convolutions skip im2col (:meth:`conv`): each tile's partial sums
    come from one convolution with the tiles' weights stacked along output channels
    (``T*out`` channels, zero outside each tile's rows). With a static input range this
    equals the chip read exactly (the DAC acts per element). With per-vector abs-max
    scaling the abs-max of each patch comes from a max-pool, the division is exact, and
    the DAC rounding is modelled by its additive-noise equivalent (Widrow: uniform error,
    variance ``sum_k w_k^2 / (12 L^2)`` per output for ``L`` DAC levels), gradient
    straight through.

    :meth:`linear` and :meth:`conv` (what the layers call while training) run this read,
    gain and bias through the C++ kernels of :mod:`aimc.train.hat_fused` for float32 CPU
    tensors when they are available and the chip has one slice, per-column scaling and
    no bound management (:func:`aimc.train.hat_fused.supports`), and through the PyTorch
    code here otherwise (other chips, devices or dtypes, no compiler, ``AIMC_NO_CPP=1``):
    the same function and gradients, with different random streams. ``__call__`` is the
    PyTorch read of im2col rows.
    """

    #: Grid points of the tabulated device statistics over |w| in [0, 1].
    TABLE_POINTS = 4097
    #: Times drawn from when ``t_eval_max_s`` is set.
    TIME_POINTS = 17

    def __init__(self, cfg: HATConfig, generator: torch.Generator, clock: "_PassClock | None" = None):
        self.cfg = cfg
        self.generator = generator
        self.clock = clock
        self._table_cache: dict = {}
        self._static_cache: dict = {}
        self._pool: list[int] = []

    def _draw(self) -> tuple[float, int]:
        """One 62-bit draw from the generator: the training time (when ``t_eval_max_s`` is
        set, grid point ``k`` of the log-spaced times: the pass clock's, or ``v mod 17``,
        whose modulo bias is below 1e-17) and the seed of the fused read's noise streams
        (``v // 17``)."""
        cfg = self.cfg
        if not self._pool:  # drawn 64 at a time: one generator call per 64 passes
            self._pool = torch.randint(0, 2**62, (64,), generator=self.generator,
                                       device=self.generator.device).tolist()[::-1]
        v = self._pool.pop()
        if cfg.t_eval_max_s is None:
            return cfg.t_eval_s, v // self.TIME_POINTS
        lo, hi = math.log(max(cfg.t_eval_s, 1e-9)), math.log(cfg.t_eval_max_s)
        k = self.clock.k if self.clock is not None and self.clock.k is not None else v % self.TIME_POINTS
        return math.exp(lo + (hi - lo) * k / (self.TIME_POINTS - 1)), v // self.TIME_POINTS

    def _tables(self, device, t_s: float, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Noise std and expected drifted weight (before compensation) over |w| on the grid."""
        key = (id(device), t_s, like.device, like.dtype)
        if key not in self._table_cache:
            grid = torch.linspace(0.0, 1.0, self.TABLE_POINTS, dtype=torch.float64)
            sd = device_weight_std(grid, device, t_s).to(like.device, like.dtype)
            drifts = self.cfg.expected_drift and hasattr(device, "drift_mean_std")
            mean = expected_drifted_weight(grid, device, t_s) if drifts else None
            self._table_cache[key] = (sd, None if mean is None else mean.to(like.device, like.dtype))
        return self._table_cache[key]

    def _device_sd(self, wn: torch.Tensor, device, t_s: float | None = None) -> torch.Tensor:
        """:func:`device_weight_std` of ``|wn|``, tabulated once per device and time and read
        at the nearest of :attr:`TABLE_POINTS` grid points (|error| of |w| <= 1.2e-4)."""
        table = self._tables(device, self.cfg.t_eval_s if t_s is None else t_s, wn)[0]
        idx = (wn.abs().clamp(max=1.0) * (self.TABLE_POINTS - 1)).round_().long()
        return table[idx]

    def _drifted(self, wn: torch.Tensor, device, t_s: float) -> torch.Tensor:
        """``sign(w) * h(|w|)`` of :func:`expected_drifted_weight`, linearly interpolated in
        the table (differentiable in ``wn``)."""
        table = self._tables(device, t_s, wn)[1]
        assert table is not None  # called only where self._drifts(device, t_s)
        pos = wn.abs().clamp(max=1.0) * (self.TABLE_POINTS - 1)
        i0 = pos.detach().floor().clamp_(max=self.TABLE_POINTS - 2).long()
        frac = pos - i0
        h = table[i0] + (table[i0 + 1] - table[i0]) * frac
        return torch.sign(wn.detach()) * h

    def _randn(self, shape, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=like.device, dtype=like.dtype)

    def _input_range(self, layer, x: torch.Tensor) -> torch.Tensor:
        """The learned static DAC full scale (scalar, differentiable), set on first use."""
        cfg = self.cfg
        r = layer.input_range
        if float(r.detach()) <= 0:  # first batch: start from its abs-max
            with torch.no_grad():
                r.fill_(float(x.abs().max().clamp(min=1e-6)))
        if cfg.input_range_decay > 0:
            inside = float((x.detach().abs() <= r.detach()).float().mean())
            if inside > cfg.input_min_fraction:
                r = _AddGrad.apply(r, cfg.input_range_decay * r.detach())
        return r

    def _clip(self, layer) -> None:
        """Clip the stored weights in place as the config asks (before each training read);
        frozen weights (``requires_grad=False``, e.g. kernel attention's random projection)
        are not trained, so not clipped."""
        cfg = self.cfg
        if not layer.weight.requires_grad:
            return
        if cfg.clip_sigma is not None:
            clip_channels_(layer.weight, cfg.clip_sigma)
        if cfg.clip_value is not None:
            with torch.no_grad():
                layer.weight.clamp_(-cfg.clip_value, cfg.clip_value)

    def _drifts(self, device, t_s: float) -> bool:
        cfg = self.cfg
        return (cfg.weight_noise == "device" and cfg.expected_drift and hasattr(device, "drift_mean_std")
                and t_s > device.t0_s)

    def _tile_weights(self, layer, t_s: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Noisy normalised weights ``(U, out, R)`` of the ``U = S * T`` slice tiles (slice
        ``s``, input tile ``t`` at ``u = s * T + t``) and the digital multiplier of each
        column ``(U, out, 1)`` (slice significance x column scale) at time ``t_s``; ``R`` the
        layout's ``rows_used``."""
        cfg, chip, lay = self.cfg, layer.chip, layer.layout
        check_chip(chip)
        w = layer.analog_weight()  # (out, in)
        wt = lay.split_in(w)  # (T, out, R)
        if chip.mapping.weight_scaling == "per_tensor":
            scale = wt.detach().abs().amax().clamp(min=1e-12).expand(wt.shape[0], wt.shape[1], 1)
        else:
            scale = wt.detach().abs().amax(dim=2, keepdim=True).clamp(min=1e-12)  # (T, out, 1)
        wn = wt / scale
        sig = significance(chip)
        if len(sig) > 1:  # slices from the exact weights; gradients straight through the first
            parts = slice_parts(wn.detach(), chip)
            wn = torch.cat([(parts[0] + (wn - wn.detach()))[None], parts[1:]])  # (S, T, out, R)
        else:
            wn = wn[None]
        sig_t = torch.tensor(sig, dtype=wn.dtype, device=wn.device).view(-1, 1, 1, 1)
        sd_target = wn.detach()
        if getattr(chip.device, "n_levels", None) is not None:  # programming rounds to levels (STE)
            wn = wn + (programmed_levels(wn.detach(), chip) - wn.detach())
        if self._drifts(chip.device, t_s):
            wd = self._drifted(wn, chip.device, t_s)
            with torch.no_grad():  # global drift compensation as the chip calibrates it: the
                # one-hot reads of every weight, weighted by the programmed weight's sign
                # (aimc.physics.drift.gdc_statistic), in expectation
                w0 = (wn * scale * sig_t).sum(dim=0)  # (T, out, R): the weights, slices summed
                before = w0.abs().sum()
                after = (torch.sign(w0) * (wd * scale * sig_t).sum(dim=0)).sum()
                gdc = before / after.clamp(min=1e-30)
            wn = wd * gdc
        if ir_drop_active(chip):  # the tiles' effective weights at the noise-free conductances;
            with torch.no_grad():  # gradient straight through (its Jacobian is 1 - O(r g N^2))
                w0 = wn.detach()
                correction = effective_weights(w0.transpose(-1, -2), lay, chip).transpose(-1, -2) - w0
            wn = wn + correction
        if cfg.noise_scale > 0:
            sd: torch.Tensor | float
            if cfg.weight_noise == "device":
                sd = cfg.noise_scale * self._device_sd(sd_target, chip.device, t_s)
            else:  # relative to each channel's abs-max, which is 1 in every tile column
                sd = cfg.noise_scale
            wn = wn + sd * self._randn(wn.shape, wn)
        return wn.flatten(0, 1), (sig_t * scale).flatten(0, 1)

    def _adc(self, chip, y: torch.Tensor, extra_sd: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Output noise (plus independent Gaussian noise of std ``extra_sd``, broadcast to
        ``y``, in one draw) and ADC on partial sums in device units (any shape); returns the
        converted values and the saturation mask ``|v| > adc.bound`` of the noisy ones."""
        if not self.cfg.quantize_io:
            return y, torch.zeros((), dtype=torch.bool, device=y.device)
        per = Periphery.of(chip)
        out_sd = per.out_noise if self.cfg.out_noise is None else self.cfg.out_noise
        if extra_sd is not None:
            y = y + (extra_sd**2 + out_sd**2).sqrt() * self._randn(y.shape, y)
        elif out_sd > 0:
            y = y + out_sd * self._randn(y.shape, y)
        if per.adc_max is None:
            return y, torch.zeros((), dtype=torch.bool, device=y.device)
        sat = y.detach().abs() > per.adc_bound if per.bound_management else torch.zeros((), dtype=torch.bool)
        return _ADCSTE.apply(y, per.adc_bound, per.adc_lsb), sat

    def _dac(self, chip, xn: torch.Tensor) -> torch.Tensor:
        dac = Periphery.of(chip).dac_max if self.cfg.quantize_io else None
        xn = torch.clamp(xn, -1.0, 1.0)
        return xn if dac is None else ste_round(xn * dac) / dac

    def _bound_managed(self, chip, run) -> torch.Tensor:
        """``run(f)`` -> (outputs, saturated) reads with the input scale times ``f``; as the
        chip's bound management: what saturated is re-read with ``f`` doubled, at most
        ``adc.bm_max_iter`` times (:class:`~aimc.tiles.Periphery`)."""
        y, still = run(1.0)
        per = Periphery.of(chip)
        if not (per.bound_management and self.cfg.quantize_io) or not bool(still.any()):
            return y
        f = 1.0
        for _ in range(per.bm_max_iter):
            f *= 2.0
            y_f, sat = run(f)
            y = torch.where(still, y_f, y)
            still = still & sat
            if not bool(still.any()):
                break
        return y

    def _static(self, layer, conv: bool) -> "hat_fused.Static":
        """The fixed settings of :mod:`aimc.train.hat_fused`'s read of ``layer`` (cached)."""
        key = (id(layer), id(layer.chip), tuple(layer.weight.shape))
        st = self._static_cache.get(key)
        if st is None:
            st = self._static_cache[key] = hat_fused.Static.of(layer, self.cfg, conv)
        return st

    def _fused(self, layer, x: torch.Tensor, conv: bool) -> torch.Tensor:
        """The whole read (gain and bias included) through the C++ kernels."""
        t_s, seed = self._draw()
        mean_tab = sd_tab = None
        chip = layer.chip
        check_chip(chip)
        if self.cfg.weight_noise == "device":
            sd_tab, mean_tab = self._tables(chip.device, t_s, layer.weight)
            if mean_tab is not None and not self._drifts(chip.device, t_s):
                mean_tab = None
        st = self._static(layer, conv)
        delta = None
        levels = getattr(chip.device, "n_levels", None) is not None
        # st.ir: the kernel adds the first-order IR drop itself (as hat_fused.ir_drop_delta)
        if not st.ir and (ir_drop_active(chip) or levels):  # levels and IR drop at the noise-free weights,
            with torch.no_grad():  # as the reference; a constant correction: gradients pass straight through both
                wc = hat_fused.clean_weights(layer, st, mean_tab)  # (T, out, R)
                wq = programmed_levels(wc, chip) if levels else wc
                if ir_drop_active(chip):
                    wq = effective_weights(wq.transpose(1, 2), layer.layout, chip).transpose(1, 2)
                n_out, n_in = layer.analog_weight().shape
                delta = (wq - wc).transpose(0, 1).reshape(n_out, -1)[:, :n_in].contiguous()
        r = self._input_range(layer, x) if self.cfg.input_range == "learned" else None
        return hat_fused.read(layer, x, st, mean_tab, sd_tab, seed, r, conv, delta)

    def _use_fused(self, layer, x: torch.Tensor) -> bool:
        return hat_fused.supports(layer.chip, self.cfg) and hat_fused.usable(x, layer.weight)

    def linear(self, layer, x: torch.Tensor) -> torch.Tensor:
        """(B, in) -> (B, out) of a linear layer: the training read, drift compensation
        factor, output gains and bias (the fused kernels where they apply)."""
        self._clip(layer)
        if self._use_fused(layer, x):
            return self._fused(layer, x, conv=False)
        y = self._read(layer, x) * (layer.gdc * layer.out_gain)
        return y if layer.bias is None else y + layer.bias

    def __call__(self, layer, x: torch.Tensor) -> torch.Tensor:
        """(B, in) rows -> (B, out), before drift compensation, gains and bias (PyTorch)."""
        self._clip(layer)
        return self._read(layer, x)

    def _read(self, layer, x: torch.Tensor) -> torch.Tensor:
        chip, lay = layer.chip, layer.layout
        wn, mult = self._tile_weights(layer, self._draw()[0])  # (U, out, R), (U, out, 1)
        if self.cfg.input_range == "learned":
            amax = self._input_range(layer, x)
        elif Periphery.of(chip).abs_max:
            amax = x.detach().abs().amax(dim=1, keepdim=True).clamp(min=1e-12)  # (B, 1)
        else:
            amax = Periphery.of(chip).input_scale(x)
        U, R = wn.shape[0], wn.shape[2]
        S = U // lay.t_in

        def run(f: float):
            xn = self._dac(chip, x / (amax * f))
            xt = lay.split_in(xn)  # (T, B, R)
            xt = xt.repeat(S, 1, 1) if S > 1 else xt  # (U, B, R)
            y, sat = self._adc(chip, torch.bmm(xt, wn.transpose(1, 2)))  # (U, B, out), device units
            sat = sat.any(dim=2).any(dim=0)[:, None] if sat.dim() else sat
            return (y * mult.transpose(1, 2)).sum(dim=0) * (amax * f), sat

        return self._bound_managed(chip, run)

    def conv(self, layer, x: torch.Tensor) -> torch.Tensor:
        """(B, C, *spatial) -> (B, out, *out_spatial) of a convolution layer (class doc):
        the training read, drift compensation factor, output gains and bias."""
        self._clip(layer)
        if layer.padding_mode == "zeros" and x.dim() in (3, 4) and self._use_fused(layer, x):
            return self._fused(layer, x, conv=True)
        nd = x.dim() - 2
        y = self._conv_read(layer, x) * (layer.gdc * layer.out_gain).view(-1, *([1] * nd))
        return y if layer.bias is None else y + layer.bias.view(-1, *([1] * nd))

    def _conv_read(self, layer, x: torch.Tensor) -> torch.Tensor:
        """The PyTorch convolution read, before drift compensation, gains and bias
        (:func:`aimc.train.hat_conv_read.conv_read`)."""
        return conv_read(self, layer, x)


def enable_hat(model: nn.Module, cfg: HATConfig | str | None, seed: int = 0) -> None:
    """Install (or, with ``cfg=None``, remove) the HAT read on every analog layer.

    ``cfg`` may name a preset of :data:`HAT_PRESETS`. Marks ``input_range`` and
    ``out_gain`` trainable as the config asks (so an optimizer built afterwards sees them).
    With ``time_draw="pass"`` a forward pre-hook on ``model`` draws each pass's training
    time (layers called on their own reuse the last pass's time).
    """
    layers = [m for _, m in analog_layers(model)]
    if not layers:
        raise ValueError("enable_hat: the model has no analog layers; call aimc.convert(model, chip) first")
    if isinstance(cfg, str):
        if cfg not in HAT_PRESETS:
            raise ValueError(f"unknown HAT preset {cfg!r}; allowed: {', '.join(HAT_PRESETS)}")
        cfg = HAT_PRESETS[cfg]
    gen = torch.Generator(device=layers[0].weight.device).manual_seed(int(seed))
    old = getattr(model, "_aimc_hat_hook", None)
    if old is not None:
        old.remove()
        # torch's stubs type Module.__setattr__'s value as Tensor | Module; any value is allowed
        model._aimc_hat_hook = None  # type: ignore[assignment]
    clock = None
    if cfg is not None and cfg.time_draw == "pass" and cfg.t_eval_max_s is not None:
        clock = _PassClock(gen, HATForward.TIME_POINTS)
        model._aimc_hat_hook = model.register_forward_pre_hook(clock)  # type: ignore[assignment]  # as above
    for layer in layers:
        if cfg is not None:
            check_chip(layer.chip)
        layer.train_forward = None if cfg is None else HATForward(cfg, gen, clock)
        layer.input_range.requires_grad_(cfg is not None and cfg.input_range == "learned")
        layer.out_gain.requires_grad_(cfg is not None and cfg.learn_out_scales)
