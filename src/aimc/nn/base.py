"""Shared machinery of the analog layers: programming, time, compensation, reads.

An analog layer keeps the torch layer's ``weight`` (the programming target) and adds
buffers for the programmed chip state, so ``state_dict`` round-trips it:

* ``g_uS`` and ``drift_state``: per-device conductance at programming and drift
  parameter, shape ``(slices, 2, tiles_in, rows_used, out)`` (empty when programmed lean);
* ``prog_seed``: the seed a layer programmed with ``store="lean"`` redraws its devices
  from (:mod:`aimc.tiles.seeded`; -1: the state is stored in ``g_uS``/``drift_state``);
* ``out_scale``: digital scale per tile column; ``t_s``: seconds since programming;
* ``gdc_ref``/``gdc``: global drift compensation reference and factor;
* ``read_seed``: seed of the per-read noise stream, mixed with the time since
  programming (-1: not programmed).

and two digital parameters, trained by hardware-aware training or on-device fine-tuning
(frozen, ``requires_grad=False``, until a recipe enables them):

* ``out_gain`` (out,): per-output-column digital gain applied after the ADC (1: none);
* ``input_range`` (): static DAC full scale of this layer's inputs; inputs beyond it clip
  (0: the chip's own noise management, e.g. per-vector abs-max).

An unprogrammed layer reads its weights as if programmed exactly (no programming noise,
no drift) but with every peripheral non-ideality and read noise of the chip.

Two ways to hold a programmed chip (:func:`aimc.program`'s ``store``): ``"full"`` stores
the devices' state (16 bytes per weight position) and builds the read matrices of a time
from it; ``"lean"`` stores only the seed and redraws the state block by block, bit for bit,
whenever the read matrices of another time are built (:func:`aimc.tiles.seeded.
seeded_read_matrices`), so the layer holds its targets, the read matrices of the current
time and a few scalars. A lean layer's chip is a function of its weights: changing them
(or their dtype) after programming is an error at the next rebuild (program again);
moving them to another device keeps the chip.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Callable

import torch

from aimc.chips import ChipSpec, load
from aimc.nn.chipstate import one_chip_read, redraw, resolve_ref
from aimc.physics.devices import DeviceState
from aimc.physics.drift import check_time_s, gdc_factor, gdc_repeats, gdc_statistic
from aimc.tiles import ProgrammedTiles, ReadMatrices, TileLayout, encode, mvm, program_tiles, read_matrices
from aimc.tiles.crossbar import Encoded, encode_scale
from aimc.tiles.conv import ConvGeometry, conv_mvm
from aimc.tiles.multichip import mvm_chips

__all__ = ["AnalogLayerMixin", "STORES"]

#: How a programmed chip is held (module doc).
STORES = ("full", "lean")

if TYPE_CHECKING:  # the mixin is only ever mixed into torch modules: type it as one
    _ModuleBase = torch.nn.Module
else:  # at run time a plain mixin, so the torch layer class supplies nn.Module
    _ModuleBase = object


def _check_dtype(layer, args) -> None:
    """Forward pre-hook: the input's dtype must be the layer's (as in torch, no silent cast)."""
    x = args[0] if args else None
    if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype != layer.weight.dtype:
        raise TypeError(f"{type(layer).__name__}{tuple(layer.weight.shape)}: input dtype {x.dtype} differs from the "
                        f"layer's {layer.weight.dtype}; cast the input (x.to({layer.weight.dtype})) -- analog "
                        "layers, like torch's, do not cast silently")

_BUFFERS = ("g_uS", "drift_state", "out_scale")
_MASK63 = (1 << 63) - 1
_GDC_CHUNK = 4096  # one-hot calibration vectors per read call (bounds the (chunk, in) input)


class _ChipReadSTE(torch.autograd.Function):
    """Chip in the loop: the forward pass is the chip's read; the backward pass treats it
    as ``x @ W.T`` with the layer's target weights (inputs beyond a static input range get
    no gradient), so digital parts around analog layers can be trained on the deployed
    chip (straight-through estimator of the non-differentiable read)."""

    @staticmethod
    def forward(ctx, x, w, layer):
        r = float(layer.input_range.detach())
        ctx.save_for_backward(x, w)
        ctx.r = r
        return layer._chip_mvm(x.detach())

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        gx = grad @ w.detach()
        if ctx.r > 0:
            gx = gx * (x.abs() <= ctx.r)
        return gx, None, None


class AnalogLayerMixin(_ModuleBase):
    """Mixed into ``nn.Linear``/``nn.Conv*`` subclasses; see module doc."""

    chip: ChipSpec
    # supplied by the torch layer this is mixed into
    weight: torch.Tensor
    bias: torch.Tensor | None
    # buffers and parameters registered by _init_analog (see module doc)
    g_uS: torch.Tensor
    drift_state: torch.Tensor
    out_scale: torch.Tensor
    t_s: torch.Tensor
    gdc_ref: torch.Tensor
    gdc: torch.Tensor
    read_seed: torch.Tensor
    prog_seed: torch.Tensor
    out_gain: torch.nn.Parameter
    input_range: torch.nn.Parameter
    #: Optional ``f(layer, x) -> y`` used instead of the tile read while ``training``
    #: (hardware-aware training, :mod:`aimc.train.hat`, installs one).
    train_forward: Callable[[AnalogLayerMixin, torch.Tensor], torch.Tensor] | None

    def _init_analog(self, chip: ChipSpec | str | None) -> None:
        self.chip = load(chip if chip is not None else "ideal")
        dev = self.weight.device
        for name in _BUFFERS:
            self.register_buffer(name, torch.empty(0, device=dev))
        self.register_buffer("t_s", torch.zeros((), dtype=torch.float64, device=dev))
        self.register_buffer("gdc_ref", torch.zeros((), device=dev))
        self.register_buffer("gdc", torch.ones((), device=dev))
        self.register_buffer("read_seed", torch.full((), -1, dtype=torch.int64, device=dev))
        self.register_buffer("prog_seed", torch.full((), -1, dtype=torch.int64, device=dev))
        n_out = self.analog_weight().shape[0]  # tile output columns
        self.out_gain = torch.nn.Parameter(torch.ones(n_out, device=dev, dtype=self.weight.dtype), requires_grad=False)
        self.input_range = torch.nn.Parameter(torch.zeros((), device=dev, dtype=self.weight.dtype), requires_grad=False)
        self._cache: tuple | None = None
        self._signs: torch.Tensor | None = None  # lean: programmed signs from the last redraw
        self._ref_pending = False  # lean: gdc_ref not yet calibrated (chipstate.resolve_ref)
        self._lean_weights: tuple = ()  # lean: (storage, version) of the weights programmed
        self._read_gen: torch.Generator | None = None
        #: While :class:`aimc.nn.montecarlo.ChipBatch` runs the model: the N chips of this
        #: layer, whose batched read replaces the single chip's (None otherwise).
        self.chip_batch: Any = None
        self.train_forward = None
        # checks the input dtype; being a hook, it also keeps torch's fused
        # TransformerEncoderLayer fast path (taken only without hooks) off this layer's parents
        self.register_forward_pre_hook(_check_dtype)

    # -- the matrix this layer stores on tiles -----------------------------------------
    def analog_weight(self) -> torch.Tensor:
        """The (out, in) matrix programmed on the tiles."""
        return self.weight.reshape(self.weight.shape[0], -1)

    @property
    def is_programmed(self) -> bool:
        return int(self.read_seed) >= 0

    @property
    def is_lean(self) -> bool:
        """True when programmed with ``store="lean"`` (module doc)."""
        return int(self.prog_seed) >= 0 and self.is_programmed

    def _weights_key(self) -> tuple:
        return (self.weight.data_ptr(), self.weight._version)

    @property
    def layout(self) -> TileLayout:
        return TileLayout.of(tuple(self.analog_weight().shape), self.chip)

    # -- chip operations ----------------------------------------------------------------
    def program_draws(self, generator: torch.Generator, enc: Encoded | None = None,
                      faults: torch.Tensor | None = None) -> tuple[ProgrammedTiles, int]:
        """The programmed tiles and read seed of one chip, drawn from ``generator``; what
        :meth:`program_analog` stores (and :mod:`aimc.nn.montecarlo` stacks for N chips,
        passing the weights' encoding ``enc``, the same for every chip); ``faults``: the
        die's fault codes for this layer's devices (:mod:`aimc.tiles.faults`)."""
        with torch.no_grad():
            enc = encode(self.analog_weight(), self.chip) if enc is None else enc
            tiles = program_tiles(enc, self.chip, generator, faults)
        return tiles, int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))

    def program_analog(self, generator: torch.Generator, faults: torch.Tensor | None = None,
                       store: str = "full") -> None:
        """Write the current weights to the chip (programming noise drawn once); ``faults``:
        the die's fault codes for this layer's devices (:mod:`aimc.tiles.faults`);
        ``store``: ``"full"`` or ``"lean"`` (module doc; lean takes no fault map)."""
        if store not in STORES:
            raise ValueError(f"store must be one of {', '.join(STORES)}, got {store!r}")
        if store == "lean":
            if faults is not None:
                raise ValueError(f"{type(self).__name__}: store='lean' takes no fault map (its devices are "
                                 "redrawn from a seed); program with store='full'")
            seeds = torch.randint(0, 2**62, (2,), generator=generator, device=generator.device).tolist()
            prog_seed, read_seed = int(seeds[0]), int(seeds[1])
            with torch.no_grad():
                scale = encode_scale(self.analog_weight(), self.chip)
            empty = torch.empty(0, device=self.weight.device)
            state = (empty, empty.clone())
        else:
            tiles, read_seed = self.program_draws(generator, faults=faults)
            prog_seed, scale, state = -1, tiles.scale, (tiles.state.g_uS, tiles.state.drift)
        with torch.no_grad():
            self.g_uS, self.drift_state = state
            self.out_scale = scale
            self.prog_seed.fill_(prog_seed)
            self._lean_weights = self._weights_key()
            self.read_seed.fill_(read_seed)
            self.t_s.zero_()
            self.gdc.fill_(1.0)
            self._invalidate()
            self._ref_pending = store == "lean"  # lean: calibrated at the first compensation (resolve_ref)
            self.gdc_ref.copy_(self._calibration_read() if store == "full" else torch.zeros(()))
            self._signs = None

    def set_time(self, t_s: float) -> None:
        """Set the time since programming (drift/retention are applied on the next read)."""
        self.t_s.fill_(check_time_s(t_s))
        self._invalidate()

    def compensate_drift(self, enable: bool = True) -> None:
        """Global drift compensation: rescale outputs by a0 / a(t) (see physics.drift)."""
        if not enable:
            self.gdc.fill_(1.0)
            return
        if not self.is_programmed:
            raise RuntimeError(f"{type(self).__name__}: program the layer before compensating drift")
        resolve_ref(self)
        with torch.no_grad():
            self.gdc.copy_(gdc_factor(self.gdc_ref, self._calibration_read()))
        self._signs = None  # a lean layer's signs are redrawn with the next time's matrices

    def _calibration_read(self, rm: ReadMatrices | None = None, gen: torch.Generator | None = None) -> torch.Tensor:
        """GDC statistic of the programmed layer now: ``sum_ij s_ij ybar_ij`` over one-hot
        reads of every row, each repeated R times (:mod:`aimc.physics.drift`); ``rm`` and
        ``gen``: other read matrices and noise stream than the layer's own."""
        n_out, n_in = self.analog_weight().shape
        dev, dt = self.weight.device, self.weight.dtype
        reps = gdc_repeats(n_in, n_out)
        eye = torch.eye(n_in, device=dev, dtype=dt)
        reads = torch.empty(reps * n_in, n_out, device=dev, dtype=torch.float32)
        rm = self._read_matrices() if rm is None else rm
        gen = self._generator(dev) if gen is None else gen
        cr = one_chip_read(rm)  # the multichip one-hot read gathers rows of w (same read as mvm)
        for i in range(0, reps * n_in, _GDC_CHUNK):  # row k of the batch is e_(k mod in)
            rows = torch.arange(i, min(i + _GDC_CHUNK, reps * n_in), device=dev) % n_in
            reads[i: i + len(rows)] = mvm_chips(eye[rows], cr, self.chip, gen, type(self).__name__, shared=True,
                                                onehot=rows)
        return gdc_statistic(reads.view(reps, n_in, n_out), self._programmed_signs())

    def _programmed_signs(self) -> torch.Tensor:
        """Signs ``(in, out)`` of the weights as programmed (conductances at t0, slices
        combined with their digital scales); fixed between calibration reads."""
        n_out, n_in = self.analog_weight().shape
        if self.is_lean:
            if self._signs is None:  # not kept from the last redraw: draw the devices again
                self._redraw_now()
            assert self._signs is not None
            return self._signs.float()
        w = ((self.g_uS[:, 0] - self.g_uS[:, 1]) * self.out_scale[:, :, None, :]).sum(dim=0)  # (T, R, out)
        return torch.sign(w.reshape(-1, n_out)[:n_in]).float()

    # -- reads ----------------------------------------------------------------------------
    def _redraw_now(self) -> ReadMatrices:
        """A lean layer: redraw its devices at the current time, cache the read matrices
        and keep the programmed signs (:func:`aimc.nn.chipstate.redraw`)."""
        key, rms, self._signs = redraw(self, (float(self.t_s),))
        self._cache = (key, rms[0])
        return rms[0]

    def _invalidate(self) -> None:
        self._cache = None
        self._signs = None
        self._read_gen = None

    def _read_matrices(self) -> ReadMatrices:
        """The read matrices of the tiles now (:func:`aimc.tiles.read_matrices`), cached.

        Programmed: keyed on the time since programming (the chip no longer follows
        ``weight``). Unprogrammed (weights read as if written exactly): also keyed on the
        weight's storage and in-place version counter, so they are encoded once, not on
        every read, and again after an optimizer step or a ``weight.data`` assignment.
        """
        w = self.analog_weight()
        key: tuple = (w.device, w.dtype, float(self.t_s), self.is_programmed)
        if not self.is_programmed:
            key += self._weights_key()
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        if self.is_lean:
            return self._redraw_now()
        if self.is_programmed:
            tiles = ProgrammedTiles(self.layout, DeviceState(self.g_uS, self.drift_state), self.out_scale)
        else:
            enc = encode(w, self.chip)
            tiles = ProgrammedTiles(enc.layout, DeviceState(enc.g_target_uS, torch.zeros_like(enc.g_target_uS)), enc.scale)
        rm = read_matrices(tiles, self.chip, float(self.t_s))
        self._cache = (key, rm)
        return rm

    def read_cache_bytes(self) -> int:
        """Bytes held by the cached read matrices (0 when none are cached)."""
        if self._cache is None:
            return 0
        rm = self._cache[1]
        return sum(t.numel() * t.element_size() for t in (rm.w, rm.var, rm.post, rm.var_scale) if t is not None)

    def _generator(self, device: torch.device) -> torch.Generator:
        """The read-noise stream: seeded from ``read_seed`` and the time since programming,
        so reads at different times draw independent noise (a drift-compensation read at t
        does not repeat the draws of the reference read at t = 0) and the same chip at the
        same time reads the same."""
        if self._read_gen is None or self._read_gen.device != device:
            self._read_gen = torch.Generator(device=device).manual_seed(self._seed_at(float(self.t_s)))
        return self._read_gen

    def _seed_at(self, t_s: float) -> int:
        seed = int(self.read_seed) if self.is_programmed else 0
        t_bits = struct.unpack("<q", struct.pack("<d", t_s))[0] & _MASK63
        return (seed * 0x9E3779B97F4A7C15 + t_bits) & _MASK63 if t_bits else seed  # t = 0: seed as is

    def analog_mvm(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """(B, in) -> (B, out) through the tiles and digital post-processing: drift
        compensation and output gains, then ``bias`` if given."""
        if self.chip_batch is not None:
            return self.chip_batch.mvm(self, x, bias)
        gain = self.gdc * self.out_gain
        if self.training and self.train_forward is not None:
            y = self.train_forward(self, x)
        elif torch.is_grad_enabled() and x.requires_grad:
            y = _ChipReadSTE.apply(x, self.analog_weight(), self)
        elif torch.is_grad_enabled() and (gain.requires_grad or (bias is not None and bias.requires_grad)):
            y = self._chip_mvm(x)  # gradients reach the gains and the bias through the ops below
        else:  # a plain read: gains and bias applied in its last pass (fewer passes over y)
            return self._chip_mvm(x, gain, bias)
        y = y * gain
        return y if bias is None else y + bias

    def _chip_mvm(self, x: torch.Tensor, out_scale: torch.Tensor | None = None,
                  bias: torch.Tensor | None = None) -> torch.Tensor:
        r = float(self.input_range.detach())
        return mvm(x, self._read_matrices(), self.chip, self._generator(x.device), name=type(self).__name__,
                   input_range=r if r > 0 else None, out_scale=out_scale, bias=bias)

    def analog_conv(self, x: torch.Tensor, geo: ConvGeometry) -> torch.Tensor:
        """(B, C, *spatial) -> (B, out, *out_spatial): the convolution read of the tiles
        (:func:`aimc.tiles.conv.conv_mvm`), drift compensation, output gains and bias, the
        last three in place unless they are being trained (no gradient reaches ``x``)."""
        if self.chip_batch is not None:
            return self.chip_batch.conv(self, x, geo)
        r = float(self.input_range.detach())
        y = conv_mvm(x.detach(), self._read_matrices(), self.chip, geo, self._generator(x.device),
                     name=type(self).__name__, input_range=r if r > 0 else None)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        gain, bias = (self.gdc * self.out_gain).view(shape), self.bias
        if torch.is_grad_enabled() and (gain.requires_grad or (bias is not None and bias.requires_grad)):
            y = y * gain  # digital gains or bias being trained on the chip's outputs
            return y if bias is None else y + bias.view(shape)
        if bias is None:
            return y.mul_(gain)
        return torch.addcmul(bias.view(shape), y, gain, out=y)  # one pass: y * gain + bias

    def chip_read(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in) -> (B, out): one raw read of the programmed (or exactly written) tiles,
        with the chip's own input scaling (drift calibration reads the one-hot rows of the
        same read, :meth:`_calibration_read`)."""
        return mvm(x, self._read_matrices(), self.chip, self._generator(x.device), name=type(self).__name__)

    # -- state_dict: programmed buffers change shape on load -----------------------------
    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("out_gain", "input_range"):  # absent from files of older versions: defaults
            state_dict.setdefault(prefix + name, getattr(self, name).detach().clone())
        state_dict.setdefault(prefix + "prog_seed", torch.full((), -1, dtype=torch.int64))  # older: state stored
        for name in _BUFFERS:
            key = prefix + name
            if key in state_dict and getattr(self, name).shape != state_dict[key].shape:
                setattr(self, name, torch.empty_like(state_dict[key], device=self.weight.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._invalidate()
        self._ref_pending = False
        self._lean_weights = self._weights_key()

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        resolve_ref(self)  # a lean layer's deferred GDC reference, before it is saved
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _apply(self, fn, *args, **kwargs):
        lean_ok = self._weights_key() == getattr(self, "_lean_weights", ())
        dtype = self.weight.dtype
        out = super()._apply(fn, *args, **kwargs)
        self._invalidate()
        if lean_ok and self.weight.dtype == dtype:  # moved, not changed: redrawn from the weights where they are
            self._lean_weights = self._weights_key()
        return out

    def extra_repr(self) -> str:
        state = f"programmed{' (lean)' if self.is_lean else ''}, t={float(self.t_s):g}s" if self.is_programmed \
            else "unprogrammed"
        return f"{super().extra_repr()}, chip={self.chip.name}, {state}"
