"""N programmed chips of one model, read in one batched pass: Monte Carlo over chips.

An analog accuracy is a distribution over programmed chips. :class:`ChipBatch` programs
``C`` chips of a converted model, chip ``c`` with ``aimc.program(model, seed=seeds[c])``'s
random streams (the same conductances, drift exponents and read seed as programming that
one chip), keeps them as tensors with a chip dimension (:mod:`aimc.tiles.multichip`) and
runs the model on all of them at once: the input batch is repeated chip-major
(``C*B`` rows), digital layers see a larger batch, and every analog layer reads each
chip's rows with that chip's conductances in one batched pass. Drift, global drift
compensation (one-hot calibration reads of every row, :mod:`aimc.physics.drift`, per
chip) and the time since programming work as for one chip. On a chip whose programming
noise is at least ten times bfloat16's rounding the chips keep their effective weights in
bfloat16, as a lean layer does (:func:`aimc.nn.chipstate.lean_w_dtype`): their reads
multiply them exactly (the convolutions two rows per bfloat16 dot product, the DAC codes
being exact in bfloat16), so a chip's read differs from a float32 one by the weights'
rounding (at most 2^-9 of each product) and float summation order only.

The model's own buffers are left alone (its layers keep whatever single chip they hold);
the chips live in the :class:`ChipBatch`. Its layers must take batch-first inputs (the
chip-major rows must stay outermost): a sequence-first ``nn.MultiheadAttention`` is
refused. Memory grows with ``C`` times the batch: split many chips into several batches
(:func:`aimc.sweep.montecarlo.chip_metrics` does) and read in batches of images.

Example:
    >>> import torch, aimc
    >>> net = aimc.convert(torch.nn.Sequential(torch.nn.Linear(8, 4)), "pcm-hermes")
    >>> chips = ChipBatch(net, seeds=[0, 1, 2])
    >>> chips.drift(86400.0); chips.compensate()
    >>> chips(torch.randn(5, 8)).shape  # (chips, batch, out)
    torch.Size([3, 5, 4])
"""
from __future__ import annotations

import struct
from typing import Any, Sequence

import torch
from torch import nn

from aimc.nn.chipstate import lean_w_dtype
from aimc.nn.convert import program_generators
from aimc.physics.drift import check_time_s, gdc_factor, gdc_repeats, gdc_statistic
from aimc.tiles.conv import ConvGeometry
from aimc.tiles.crossbar import ProgrammedTiles, encode
from aimc.tiles.multichip import ChipsRead, chips_read_matrices, conv_mvm_chips, mvm_chips, program_tiles_chips

__all__ = ["ChipBatch"]

_MASK63 = (1 << 63) - 1
_GDC_CHUNK = 4096  # one-hot calibration vectors per chip per read (as one chip's calibration)


class _LayerChips:
    """The ``C`` chips of one analog layer: stacked tiles, read seeds, drift compensation."""

    def __init__(self, layer: Any, tiles: ProgrammedTiles, read_seeds: list[int], float32_weights: bool) -> None:
        self.layer = layer
        self.tiles = tiles  # state (S, 2, C, T, R, out)
        self.w_dtype = None if float32_weights else lean_w_dtype(layer.chip)
        self.n_chips = len(read_seeds)
        seed = 0
        for s in read_seeds:  # one read stream for the batch, from every chip's read seed
            seed = (seed * 0x9E3779B97F4A7C15 + int(s)) & _MASK63
        self.read_seed = seed
        dev = layer.weight.device
        self.gdc = torch.ones(self.n_chips, device=dev)
        self.t_s = 0.0
        self._read: ChipsRead | None = None
        self._gen: torch.Generator | None = None
        self.gdc_ref = self.calibration_read()

    def set_time(self, t_s: float) -> None:
        self.t_s = t_s
        self._read, self._gen = None, None

    def read(self) -> ChipsRead:
        if self._read is None:
            self._read = chips_read_matrices(self.tiles, self.layer.chip, self.t_s, self.w_dtype)
        return self._read

    def generator(self, device: torch.device) -> torch.Generator:
        """The read-noise stream, mixed with the time since programming (as one chip's)."""
        if self._gen is None or self._gen.device != device:
            t_bits = struct.unpack("<q", struct.pack("<d", float(self.t_s)))[0] & _MASK63
            seed = (self.read_seed * 0x9E3779B97F4A7C15 + t_bits) & _MASK63 if t_bits else self.read_seed
            self._gen = torch.Generator(device=device).manual_seed(seed)
        return self._gen

    def _name(self) -> str:
        return f"{type(self.layer).__name__} (chip batch)"

    def _input_range(self) -> float | None:
        r = float(self.layer.input_range.detach())
        return r if r > 0 else None

    def mvm(self, layer: Any, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """(C*B, in) -> (C*B, out): the layer's read on every chip, gains and bias included."""
        return mvm_chips(x, self.read(), layer.chip, self.generator(x.device), self._name(), self._input_range(),
                         self.gdc, layer.out_gain, bias)

    def conv(self, layer: Any, x: torch.Tensor, geo: ConvGeometry) -> torch.Tensor:
        """(C*B, Cin, *sp) -> (C*B, out, *out_sp): the convolution on every chip."""
        return conv_mvm_chips(x, self.read(), layer.chip, geo, self.generator(x.device), self._name(),
                              self._input_range(), self.gdc, layer.out_gain, layer.bias)

    def calibration_read(self) -> torch.Tensor:
        """GDC statistic of every chip now (C,): one-hot reads of every row, repeated as
        for one chip (:meth:`aimc.nn.base.AnalogLayerMixin._calibration_read`)."""
        layer, C = self.layer, self.n_chips
        n_out, n_in = layer.analog_weight().shape
        dev, dt = layer.weight.device, layer.weight.dtype
        reps = gdc_repeats(n_in, n_out)
        eye = torch.eye(n_in, device=dev, dtype=dt)
        cr, gen = self.read(), self.generator(dev)
        parts = []
        for i in range(0, reps * n_in, _GDC_CHUNK):  # row k of the batch is e_(k mod in)
            rows = torch.arange(i, min(i + _GDC_CHUNK, reps * n_in), device=dev) % n_in
            parts.append(mvm_chips(eye[rows], cr, layer.chip, gen, self._name(), shared=True, onehot=rows)
                         .view(C, len(rows), n_out))
        reads = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        g = self.tiles.state.g_uS  # (S, 2, C, T, R, out)
        w = ((g[:, 0] - g[:, 1]) * self.tiles.scale[:, None, :, None, :]).sum(dim=0)  # (C, T, R, out)
        signs = torch.sign(w.reshape(C, -1, n_out)[:, :n_in]).float()
        return gdc_statistic(reads.view(C, reps, n_in, n_out), signs)


class ChipBatch:
    """``len(seeds)`` chips of a converted ``model``, programmed and read together (module doc).

    Args:
        model: a model converted by :func:`aimc.convert` (its weights are programmed).
        seeds: one programming seed per chip; chip ``c`` equals ``aimc.program(model, seeds[c])``.
        float32_weights: keep the effective weights in float32 on every chip, as a layer
            programmed with ``store="full"`` does; by default a chip whose programming
            noise is at least ten times bfloat16's rounding keeps them in bfloat16
            (:func:`aimc.nn.chipstate.lean_w_dtype`), which its reads multiply exactly.

    Raises:
        ValueError: no seeds, no analog layers, or a sequence-first attention layer.
    """

    def __init__(self, model: nn.Module, seeds: Sequence[int], float32_weights: bool = False) -> None:
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("ChipBatch: give at least one seed")
        for name, m in model.named_modules():
            if isinstance(m, nn.MultiheadAttention) and not m.batch_first:
                raise ValueError(f"ChipBatch: {name or '<model>'} is a sequence-first attention; chip batches "
                                 "need batch-first inputs (batch_first=True)")
        self.model, self.seeds = model, seeds
        self.layers = []
        # every chip's stream advanced in step, layer by layer: chip c's draws come in the
        # order of aimc.program(model, seeds[c]) (layer.program_draws: tiles, then read seed)
        streams = [program_generators(model, s, "ChipBatch") for s in seeds]
        for per_chip in zip(*streams):
            layer, gens = per_chip[0][0], [g for _, g in per_chip]
            with torch.no_grad():
                tiles = program_tiles_chips(encode(layer.analog_weight(), layer.chip), layer.chip, gens)
            read_seeds = [int(torch.randint(0, 2**62, (1,), generator=g, device=g.device)) for g in gens]
            self.layers.append(_LayerChips(layer, tiles, read_seeds, float32_weights))
        self.t_s = 0.0

    @property
    def n_chips(self) -> int:
        return len(self.seeds)

    def drift(self, t_s: float) -> None:
        """Set the time since programming of every chip (seconds, finite, >= 0)."""
        self.t_s = check_time_s(t_s)
        for lc in self.layers:
            lc.set_time(self.t_s)

    def compensate(self, enable: bool = True) -> None:
        """Global drift compensation of every layer of every chip at the current time."""
        for lc in self.layers:
            lc.gdc = gdc_factor(lc.gdc_ref, lc.calibration_read()) if enable else torch.ones_like(lc.gdc)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs ``x`` (B, ...) -> outputs (C, B, ...): every chip reads the same inputs."""
        C, B = self.n_chips, x.shape[0]
        xs = x.unsqueeze(0).expand(C, *x.shape).reshape(C * B, *x.shape[1:])
        was_training = self.model.training
        self.model.eval()
        try:
            for lc in self.layers:
                lc.layer.chip_batch = lc
            with torch.no_grad():
                y = self.model(xs)
        finally:
            for lc in self.layers:
                lc.layer.chip_batch = None
            self.model.train(was_training)
        if y.shape[0] != C * B:
            raise ValueError(f"ChipBatch: the model's output has {y.shape[0]} rows, expected chips x batch = {C * B}")
        return y.view(C, B, *y.shape[1:])

    def accuracy(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
        """Top-1 accuracy of every chip (C,) in [0, 1] on ``x``, ``y``, in batches of images."""
        if len(x) == 0:
            raise ValueError("ChipBatch.accuracy: empty data set")
        correct = torch.zeros(self.n_chips, dtype=torch.long)
        for i in range(0, len(x), batch_size):
            out = self(x[i: i + batch_size])
            correct += (out.argmax(dim=-1) == y[i: i + batch_size].to(out.device)).sum(dim=1).cpu()
        return correct.double() / len(x)

