"""Hybrid on-device fine-tuning: the analog weights stay as programmed (and drifted);
a small digital part is trained on the deployed chip to win back accuracy.

Trainable digital parts, per analog layer (``parts``):

* ``bias``: the layer's bias (added digitally after the ADC);
* ``out_gain``: per-output-column digital gains after the ADC (1 at start);
* ``adapter``: a low-rank digital adapter beside the layer, ``y = analog(x) + B(A(x))``
  with ``A``: in -> rank, ``B``: rank -> out, ``B = 0`` at start so the model starts as
  deployed (LoRA, Hu et al., ICLR 2022; for convolutions ``A`` is a convolution with the
  layer's kernel to ``rank`` channels and ``B`` a 1x1 convolution).

Every training forward pass reads the chip (programming noise, drift, read noise, DAC/ADC,
as at inference); gradients pass the analog layers straight through with their target
weights (chip in the loop, :class:`aimc.nn.base._ChipReadSTE`). Drift compensation
factors stay as calibrated at deployment.

Example:
    >>> import torch, aimc
    >>> from aimc.train.hybrid import hybrid_finetune
    >>> net = aimc.convert(torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)),
    ...                    "pcm-hermes")
    >>> aimc.program(net, seed=0); aimc.drift(net, 2_592_000.0); aimc.compensate(net)
    >>> net = hybrid_finetune(net, torch.randn(64, 6), torch.arange(64) % 3, rank=2, epochs=1)
    >>> sum(p.numel() for p in net.parameters() if p.requires_grad)  # bias + gains + adapters
    72
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from aimc.train.digital import train_digital
from aimc.nn.convert import analog_layers, compensate, convert, drift, program
from aimc.nn.layers import AnalogConv1d, AnalogConv2d, AnalogLinear

__all__ = ["LowRankAdapter", "add_adapters", "hybrid_finetune", "deploy", "deploy_and_finetune", "PARTS"]

#: The digital parts :func:`hybrid_finetune` can train.
PARTS = ("bias", "out_gain", "adapter")


class LowRankAdapter(nn.Module):
    """``analog(x) + B(A(x))``: a digital rank-``rank`` correction beside an analog layer.

    Attributes:
        analog: the wrapped analog layer (its state_dict keys move under ``analog.``).
        down, up: the adapter's ``A`` and ``B`` (``B`` starts at zero).
    """

    def __init__(self, analog: nn.Module, rank: int):
        super().__init__()
        if not isinstance(rank, int) or rank < 1:
            raise ValueError(f"rank must be an int >= 1, got {rank!r}")
        self.analog = analog
        dev, dt = analog.weight.device, analog.weight.dtype
        self.down: nn.Linear | nn.Conv1d | nn.Conv2d
        self.up: nn.Linear | nn.Conv1d | nn.Conv2d
        if isinstance(analog, AnalogLinear):
            self.down = nn.Linear(analog.in_features, rank, bias=False, device=dev, dtype=dt)
            self.up = nn.Linear(rank, analog.out_features, bias=False, device=dev, dtype=dt)
        elif isinstance(analog, (AnalogConv1d, AnalogConv2d)):
            # the analog layer's own geometry tuples, of its dimension (its stubs say tuple[int, ...])
            conv: Callable[..., nn.Conv1d | nn.Conv2d] = nn.Conv1d if isinstance(analog, AnalogConv1d) else nn.Conv2d
            self.down = conv(analog.in_channels, rank, analog.kernel_size, stride=analog.stride,
                             padding=analog.padding, dilation=analog.dilation, bias=False,
                             padding_mode=analog.padding_mode, device=dev, dtype=dt)
            self.up = conv(rank, analog.out_channels, 1, bias=False, device=dev, dtype=dt)
        else:
            raise TypeError(f"LowRankAdapter: no adapter for {type(analog).__name__}")
        nn.init.zeros_(self.up.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.analog(x) + self.up(self.down(x))


def add_adapters(model: nn.Module, rank: int) -> nn.Module:
    """Wrap every analog layer of ``model`` in a :class:`LowRankAdapter`, in place."""
    names = [name for name, _ in analog_layers(model)]
    if not names:
        raise ValueError("add_adapters: the model has no analog layers; call aimc.convert(model, chip) first")
    if names == [""]:
        raise ValueError("add_adapters: pass a model that contains the analog layer, not the layer itself")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        if isinstance(parent, LowRankAdapter):
            continue
        setattr(parent, child, LowRankAdapter(getattr(parent, child), rank))
    return model


def hybrid_finetune(model: nn.Module, x: torch.Tensor, y: torch.Tensor, parts: Sequence[str] = PARTS,
                    rank: int = 4, epochs: int = 1, lr: float = 1e-3, batch_size: int = 128, seed: int = 0,
                    progress: Callable[[int, int, str], None] | None = None) -> nn.Module:
    """Train only the digital ``parts`` of a deployed analog model on its chip (module doc).

    Args:
        model: a converted, programmed model (drifted and compensated as deployed); it is
            modified in place (adapters added when ``"adapter"`` is in ``parts``).
        x, y: the fine-tuning data (a calibration set, not the test set).
        parts: any of :data:`PARTS`. rank: adapter rank.
        epochs, lr, batch_size, seed: Adam and shuffling, as :func:`aimc.train.digital.train_digital`.

    Returns:
        ``model``, in eval mode, with the trained digital parts.
    """
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise ValueError(f"parts must be a non-empty subset of {PARTS}, got {tuple(parts)}")
    layers = [m for _, m in analog_layers(model)]
    if not layers:
        raise ValueError("hybrid_finetune: the model has no analog layers; call aimc.convert(model, chip) first")
    if not all(m.is_programmed for m in layers):
        raise ValueError("hybrid_finetune: program the model first (aimc.program); it fine-tunes a deployed chip")
    for p in model.parameters():
        p.requires_grad_(False)
    for m in layers:
        m.train_forward = None
        if "bias" in parts and m.bias is not None:
            m.bias.requires_grad_(True)
        if "out_gain" in parts:
            m.out_gain.requires_grad_(True)
    if "adapter" in parts:
        add_adapters(model, rank)
        for mod in model.modules():
            if isinstance(mod, LowRankAdapter):
                mod.down.weight.requires_grad_(True)
                mod.up.weight.requires_grad_(True)
    train_digital(model, x, y, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=progress)
    return model.eval()


def deploy(model: nn.Module, chip, chip_seed: int = 0, t_s: float = 2_592_000.0) -> nn.Module:
    """A converted copy of ``model`` programmed as chip ``chip_seed``, drifted for ``t_s``
    and drift-compensated: the deployed model that on-device fine-tuning starts from."""
    analog = convert(model, chip)
    program(analog, seed=chip_seed)
    drift(analog, t_s)
    compensate(analog)
    return analog


def deploy_and_finetune(model: nn.Module, chip, x: torch.Tensor, y: torch.Tensor, x_test: torch.Tensor,
                        y_test: torch.Tensor, chip_seed: int = 0, t_s: float = 2_592_000.0,
                        parts: Sequence[str] = PARTS, rank: int = 4, epochs: int = 1, lr: float = 1e-3,
                        batch_size: int = 128, seed: int = 0,
                        progress: Callable[[int, int, str], None] | None = None) -> tuple[nn.Module, float, float]:
    """Convert ``model``, program chip ``chip_seed``, let it drift for ``t_s``, compensate,
    and fine-tune its digital ``parts`` on ``(x, y)``.

    Returns:
        ``(deployed_model, test_accuracy_before, test_accuracy_after)``.
    """
    from aimc.train.digital import accuracy
    analog = deploy(model, chip, chip_seed, t_s)
    before = accuracy(analog, x_test, y_test, batch_size=128)
    hybrid_finetune(analog, x, y, parts=parts, rank=rank, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                    progress=progress)
    return analog, before, accuracy(analog, x_test, y_test, batch_size=128)
