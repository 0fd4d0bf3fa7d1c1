"""``AnalogLSTM``, ``AnalogGRU``, ``AnalogRNN``: recurrent layers whose matrices run on tiles.

A recurrent layer is two stationary matrix-vector products per time step and direction,
the input-hidden ``W_ih x_t`` and the hidden-hidden ``W_hh h_{t-1}`` (and, for an LSTM
with ``proj_size``, the projection ``W_hr h_t``): each is an :class:`AnalogLinear` on the
chip's tiles. The gate non-linearities and the cell state stay digital, as in analog LSTM
demonstrations (Li et al., "Long short-term memory networks in memristor crossbar
arrays", Nat. Mach. Intell. 1, 49 (2019); Tsai et al., IBM PCM LSTMs, 2019). The
input-hidden products of a whole sequence are one batched read; the hidden-hidden ones
are one read per step (the recurrence). Gate equations are torch's (``nn.LSTM``,
``nn.GRU``, ``nn.RNN`` docs), so on the ``ideal`` chip each equals its torch layer to
float tolerance. Packed sequences are not supported (pad them).

Example:
    >>> import torch
    >>> lstm = torch.nn.LSTM(8, 16, num_layers=2, batch_first=True)
    >>> analog = AnalogLSTM.from_digital(lstm, "ideal")
    >>> x = torch.randn(3, 5, 8)
    >>> torch.allclose(analog(x)[0], lstm(x)[0], atol=1e-5)
    True
"""
from __future__ import annotations

from typing import cast

import torch
from torch import nn

from aimc.nn.layers import AnalogLinear

__all__ = ["AnalogLSTM", "AnalogGRU", "AnalogRNN"]

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


class _Cell(nn.Module):
    """One layer and direction: ``ih``, ``hh`` (and ``hr``) analog matrices."""

    def __init__(self, n_in: int, hidden: int, proj: int, gates: int, bias: bool, kw: dict):
        super().__init__()
        self.ih = AnalogLinear(n_in, gates * hidden, bias, **kw)
        self.hh = AnalogLinear(proj or hidden, gates * hidden, bias, **kw)
        self.hr = AnalogLinear(hidden, proj, False, **kw) if proj else None


class _AnalogRNNBase(nn.Module):
    """Shared constructor, weight copy and sequence loop of the analog recurrent layers."""

    mode = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None, *, chip=None):
        super().__init__()
        if min(input_size, hidden_size, num_layers) < 1 or proj_size < 0 or (proj_size and proj_size >= hidden_size):
            raise ValueError(f"{type(self).__name__}: input_size, hidden_size, num_layers must be >= 1 and "
                             f"0 <= proj_size < hidden_size; got {input_size}, {hidden_size}, {num_layers}, {proj_size}")
        if proj_size and self.mode != "LSTM":
            raise ValueError(f"{type(self).__name__}: proj_size is an LSTM option")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        dirs, out = 2 if bidirectional else 1, proj_size or hidden_size
        kw = dict(device=device, dtype=dtype, chip=chip)
        self.cells = nn.ModuleList(
            _Cell(input_size if layer == 0 else out * dirs, hidden_size, proj_size, _GATES[self.mode], bias, kw)
            for layer in range(num_layers) for _ in range(dirs))

    @classmethod
    def from_digital(cls, rnn: nn.RNNBase, chip):
        """Copy ``rnn``'s ``weight_ih_l{k}[_reverse]``, ``weight_hh_*``, biases and ``weight_hr_*``."""
        p = rnn.weight_ih_l0
        kw = dict(device=p.device, dtype=p.dtype, chip=chip)
        if isinstance(rnn, nn.LSTM):
            new = cls(rnn.input_size, rnn.hidden_size, rnn.num_layers, rnn.bias, rnn.batch_first, rnn.dropout,
                      rnn.bidirectional, rnn.proj_size, **kw)
        else:
            new = cls(rnn.input_size, rnn.hidden_size, rnn.num_layers, rnn.bias, rnn.batch_first, rnn.dropout,
                      rnn.bidirectional, **kw)
        if isinstance(new, AnalogRNN):
            new.nonlinearity = cast(nn.RNN, rnn).nonlinearity
        dirs = 2 if rnn.bidirectional else 1
        with torch.no_grad():
            for i, cell in enumerate(cast("list[_Cell]", new.cells)):
                sfx = f"l{i // dirs}{'_reverse' if i % dirs else ''}"
                cell.ih.weight.copy_(getattr(rnn, f"weight_ih_{sfx}"))
                cell.hh.weight.copy_(getattr(rnn, f"weight_hh_{sfx}"))
                if rnn.bias:
                    assert cell.ih.bias is not None and cell.hh.bias is not None  # built with rnn.bias
                    cell.ih.bias.copy_(getattr(rnn, f"bias_ih_{sfx}"))
                    cell.hh.bias.copy_(getattr(rnn, f"bias_hh_{sfx}"))
                if cell.hr is not None:
                    cell.hr.weight.copy_(getattr(rnn, f"weight_hr_{sfx}"))
        return new.train(rnn.training)

    def forward(self, input: torch.Tensor, hx=None):
        """As the torch layer: ``(output, h_n)`` (LSTM: ``(output, (h_n, c_n))``)."""
        if not isinstance(input, torch.Tensor):
            raise TypeError(f"{type(self).__name__}: packed sequences are not supported; pass a padded tensor")
        if input.dim() not in (2, 3) or input.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__}: input must be (T, {self.input_size}) or 3-D with last "
                             f"dimension {self.input_size}, got shape {tuple(input.shape)}")
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)  # (T, B, in)
        T, B = x.shape[:2]
        dirs, out = 2 if self.bidirectional else 1, self.proj_size or self.hidden_size
        h0, c0 = self._initial(hx, batched, B, x)
        hs: list[torch.Tensor] = []
        cs: list[torch.Tensor | None] = []
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                i = layer * dirs + d
                cell = cast(_Cell, self.cells[i])
                ys, h, c = self._run(cell, x, h0[i], c0[i] if c0 is not None else None, reverse=d == 1)
                outs.append(ys)
                hs.append(h)
                cs.append(c)
            x = torch.cat(outs, dim=-1) if dirs == 2 else outs[0]  # (T, B, dirs*out)
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                x = nn.functional.dropout(x, self.dropout)
        h_n = torch.stack(hs)  # (layers*dirs, B, out)
        y = x.transpose(0, 1) if batched and self.batch_first else x
        if not batched:
            y, h_n = y.squeeze(1), h_n.squeeze(1)
        if self.mode != "LSTM":
            return y, h_n
        c_n = torch.stack(cast("list[torch.Tensor]", cs))  # an LSTM's cell states are tensors
        return y, (h_n, c_n if batched else c_n.squeeze(1))

    def _initial(self, hx, batched: bool, B: int, x: torch.Tensor):
        dirs = 2 if self.bidirectional else 1
        n, out = self.num_layers * dirs, self.proj_size or self.hidden_size
        zeros = lambda k: torch.zeros(n, B, k, dtype=x.dtype, device=x.device)  # noqa: E731
        if hx is None:
            return zeros(out), (zeros(self.hidden_size) if self.mode == "LSTM" else None)
        h0, c0 = hx if self.mode == "LSTM" else (hx, None)
        if not batched:
            h0, c0 = h0.unsqueeze(1), (c0.unsqueeze(1) if c0 is not None else None)
        if h0.shape != (n, B, out) or (c0 is not None and c0.shape != (n, B, self.hidden_size)):
            raise ValueError(f"{type(self).__name__}: initial state must be ({n}, {B}, {out})"
                             f"{f' and ({n}, {B}, {self.hidden_size})' if self.mode == 'LSTM' else ''}")
        return h0, c0

    def _run(self, cell: _Cell, x: torch.Tensor, h: torch.Tensor, c, reverse: bool):
        """One direction of one layer over the sequence: (T, B, in) -> (T, B, out)."""
        xi = cell.ih(x)  # (T, B, G*H): one analog read for the whole sequence
        steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
        ys = [h] * x.shape[0]  # every entry is overwritten below
        for t in steps:
            g = cell.hh(h)  # (B, G*H): the recurrence, one analog read per step
            h, c = self._step(xi[t], g, h, c, cell)
            ys[t] = h
        return torch.stack(ys), h, c

    def _step(self, xi: torch.Tensor, g: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None,
              cell: _Cell) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One time step: the gates from ``xi + g``; ``(h, c)`` (``c`` None but for an LSTM)."""
        raise NotImplementedError


class AnalogLSTM(_AnalogRNNBase):
    """``nn.LSTM`` (same constructor and forward, incl. ``proj_size``) on analog tiles."""

    mode = "LSTM"

    def _step(self, xi, g, h, c, cell):
        i, f, gg, o = (xi + g).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
        h = torch.sigmoid(o) * torch.tanh(c)
        return (cell.hr(h) if cell.hr is not None else h), c


class AnalogGRU(_AnalogRNNBase):
    """``nn.GRU`` on analog tiles; ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``."""

    mode = "GRU"

    def _step(self, xi, g, h, c, cell):
        xr, xz, xn = xi.chunk(3, dim=-1)
        hr, hz, hn = g.chunk(3, dim=-1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return (1 - z) * n + z * h, None


class AnalogRNN(_AnalogRNNBase):
    """``nn.RNN`` (``nonlinearity`` tanh or relu) on analog tiles."""

    mode = "RNN_TANH"

    def __init__(self, *args, nonlinearity: str = "tanh", **kwargs):
        super().__init__(*args, **kwargs)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"AnalogRNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity

    def _step(self, xi, g, h, c, cell):
        s = xi + g
        return (torch.tanh(s) if self.nonlinearity == "tanh" else torch.relu(s)), None
