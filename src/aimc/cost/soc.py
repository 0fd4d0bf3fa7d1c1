"""The SoC view: layers run on the chip's digital units, the host's non-MVM work, and the
data moved between the analog cores and the digital units.

Priced with the chip's ``digital:`` section (:class:`~aimc.chips.digital.DigitalConfig`,
``d`` below); :func:`aimc.cost.estimate` calls these for ``digital=`` and ``host_ops=``.

A weight layer run digitally (``K x N`` weights, ``groups``, ``n_mvm`` MVMs; its weights
take ``b = K N groups mac_bits / 8`` bytes):

* ``host``: ``MACs * d.mac_pJ``;
* ``host_memory``: the weights are read once per inference from the weight memory --
  on-chip SRAM while the digital layers' weights, taken in workload order, fit in
  ``d.weight_sram_bytes`` (``b * d.sram_pJ_per_byte``), off-chip DRAM for the rest
  (``b * d.dram_pJ_per_byte``); re-use across the ``n_mvm`` vectors is inside ``mac_pJ``;
* ``inter_core``: when the model also has analog layers, the layer's input
  (``x_elements``, else ``K * n_mvm``) and output (``N * n_mvm``) activations cross the
  link between the analog cores and the digital units: ``bytes * d.link_pJ_per_byte``;
* time: ``max(MACs / d.macs_per_ns, b / bandwidth) + link_bytes / d.link_bytes_per_ns``
  (compute overlaps the weight stream; the activations are moved before and after).

Non-MVM ops (``host_ops``: op kind -> elements per inference, :data:`HOST_OP_KINDS`):
``host`` energy ``Σ elements * d.op_pJ[kind]``, time ``Σ elements / d.op_elements_per_ns[kind]``;
when the model has analog layers, every element crosses the link twice (its input from
an analog core's output buffer, its result back): ``2 * elements * d.bytes_per_element``
bytes. That is an upper bound for chains of ops on the host (a residual add after a layer
norm moves its data once, not twice): stated, not modelled.

The digital units are one resource: the digital layers and the host ops run one after
another, so in the pipelined steady state they form one stage, whose time is the sum of
theirs (:func:`aimc.cost.estimate` takes the slowest of it and the analog layers).

Example:
    >>> from aimc.chips.digital import DEFAULT_DIGITAL as d
    >>> e = digital_layers(d, K=[64.0], N=[10.0], groups=[1.0], n_mvm=[1.0], x_elements=[64.0],
    ...                    on=[True], link=False)
    >>> bool(e["host"][0] == 640 * d.mac_pJ), bool(e["host_memory"][0] == 640 * 2 * d.sram_pJ_per_byte)
    (True, True)
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence, cast

import numpy as np

from aimc.chips.digital import HOST_OP_KINDS, DigitalConfig

__all__ = ["digital_layers", "host_ops_cost", "check_host_ops"]


def digital_layers(d: DigitalConfig, K: Any, N: Any, groups: Any, n_mvm: Any, x_elements: Any, on: Any,
                   link: bool, names: Sequence[str] | None = None, chip: str = "chip") -> dict[str, np.ndarray]:
    """Energy (pJ) by category and time (ns) of the layers with ``on`` true (module doc).

    Args:
        d: the chip's digital units.
        K, N, groups, n_mvm, x_elements: per layer (arrays); ``x_elements`` the unique
            input elements per inference.
        on: which layers run digitally.
        link: whether activations cross the analog/digital link (the model has analog layers).
        names, chip: for the error when the weights fit nowhere.

    Returns:
        ``{"host", "host_memory", "inter_core", "latency_ns", "in_sram"}``, one entry per
        layer (zero for layers not ``on``).

    Raises:
        ValueError: the weights do not fit ``weight_sram_bytes`` and the chip has no DRAM.
    """
    K, N, groups, n_mvm, x_el = (np.asarray(a, dtype=float) for a in (K, N, groups, n_mvm, x_elements))
    on = np.asarray(on, dtype=bool)
    macs = K * N * n_mvm * on
    w_bytes = K * N * groups * d.mac_bits / 8.0 * on
    in_sram = on & (np.cumsum(w_bytes) <= d.weight_sram_bytes)
    spill = on & ~in_sram
    if spill.any() and d.dram_pJ_per_byte is None:
        which = [names[int(i)] if names else str(i) for i in np.flatnonzero(spill)]
        raise ValueError(f"{chip}: the weights of digital layer(s) {', '.join(which)} do not fit the digital units' "
                         f"{d.weight_sram_bytes} bytes of SRAM (digital.weight_sram_bytes) and the chip has no "
                         f"off-chip memory (digital.dram_pJ_per_byte is null): run fewer layers digitally")
    dram_pJ, dram_bw = d.dram_pJ_per_byte or 0.0, d.dram_bytes_per_ns or 1.0
    e_mem = np.where(in_sram, w_bytes * d.sram_pJ_per_byte, w_bytes * dram_pJ)
    t_mem = np.where(in_sram, w_bytes / d.sram_bytes_per_ns, w_bytes / dram_bw)
    act_bytes = (x_el + N * n_mvm) * d.bytes_per_element * on * float(link)
    lat = np.maximum(macs / d.macs_per_ns, t_mem) + act_bytes / d.link_bytes_per_ns
    return {"host": macs * d.mac_pJ, "host_memory": e_mem * on, "inter_core": act_bytes * d.link_pJ_per_byte,
            "latency_ns": lat * on, "in_sram": in_sram}


def check_host_ops(host_ops: Mapping[str, int], d: DigitalConfig, chip: str = "chip") -> dict[str, float]:
    """Validated ``{op kind: elements}``: known kinds, priced by ``d``, counts >= 0.

    Raises:
        ValueError: naming the op kind or count at fault.
    """
    out: dict[str, float] = {}
    for kind, n in host_ops.items():
        if kind not in HOST_OP_KINDS:
            raise ValueError(f"host_ops: unknown op kind {kind!r}; known: {', '.join(HOST_OP_KINDS)}")
        if kind not in d.op_pJ:
            raise ValueError(f"host_ops: {chip}'s digital units do not price op kind {kind!r} "
                             f"(state digital.op_pJ.{kind} and digital.op_elements_per_ns.{kind})")
        if isinstance(n, bool) or not isinstance(n, (int, float, np.integer, np.floating)) or not n >= 0:
            raise ValueError(f"host_ops[{kind!r}]: elements per inference must be a number >= 0, got {n!r}")
        out[kind] = float(n)
    return out


def host_ops_cost(host_ops: Mapping[str, float], d: DigitalConfig, link: bool) -> dict[str, float]:
    """Energy (pJ) and time (ns) of the non-MVM ops on the digital units (module doc).

    Example:
        >>> from aimc.chips.digital import DEFAULT_DIGITAL as d
        >>> c = host_ops_cost({"relu": 1000}, d, link=True)
        >>> c["host"] == 1000 * d.op_pJ["relu"], c["inter_core"] == 2 * 1000 * d.bytes_per_element * d.link_pJ_per_byte
        (True, True)
    """
    pj = cast("Mapping[str, float]", d.op_pJ)
    rate = cast("Mapping[str, float]", d.op_elements_per_ns)
    e = sum((n * pj[k] for k, n in host_ops.items()), 0.0)
    t = sum((n / rate[k] for k, n in host_ops.items()), 0.0)
    moved = 2.0 * sum(host_ops.values()) * d.bytes_per_element * float(link)
    return {"host": float(e), "inter_core": float(moved * d.link_pJ_per_byte),
            "latency_ns": float(t + moved / d.link_bytes_per_ns)}
