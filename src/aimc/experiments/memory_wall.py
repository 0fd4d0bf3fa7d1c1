"""The memory wall, quantified: how much of a von Neumann processor's energy and time goes
to moving weights, as the batch grows, against an analog chip whose weights never move.

On a GPU the weights of every layer cross the HBM interface once per batch; at batch 1 a
matrix-vector product does 2 operations per weight byte (int8), two orders of magnitude
below the A100's ridge point (401 ops/byte), so the layer is memory bound: its time is
the weight transfer and its energy is the HBM traffic plus the idle power burnt while
waiting. Batching amortises the weight read over ``B`` inferences until the roofline
turns compute bound at ``B ~ ridge / 2``; the weight share of energy falls as ``1/B``.
An analog chip computes where the weights are stored: its weight movement is zero at
every batch (it pays DAC, ADC and array read energy instead).

Example:
    >>> from aimc.graph.builders import mlp_workload
    >>> r = memory_wall(mlp_workload([4096, 4096]), "gpu-a100", batches=(1, 1024))
    >>> [round(s, 2) for s in r["weight_energy_share_incl_static"]]   # batch 1, batch 1024
    [0.98, 0.05]
    >>> round(r["weight_dynamic_share"][0], 3)    # of the energy spent doing something
    0.966
"""
from __future__ import annotations

from typing import Any, Sequence


from aimc.cost.baselines import load_baseline, price_baseline, roofline_arrays
from aimc.cost.baselines.von_neumann import VonNeumannSpec
from aimc.cost.layer_cost import BREAKDOWN, LayerCost
from aimc.graph.workload import LayerWork

__all__ = ["memory_wall", "analog_costs"]



def analog_costs(layers: list[LayerWork], analog) -> list[LayerCost] | None:
    """Per-layer analog costs from ``analog``: a list of :class:`LayerCost` (returned as is),
    a callable ``layers -> list[LayerCost]``, a chip name priced with
    ``aimc.cost.estimate`` (``None`` if that is not available), or ``None``."""
    if analog is None:
        return None
    if isinstance(analog, list):
        return analog
    if callable(analog):
        return list(analog(layers))
    try:
        from aimc.cost import estimate  # helper A's analog estimator (lazy: optional)
    except ImportError:
        return None
    res = estimate(layers, analog)
    got = getattr(res, "layers", None)
    if got is None and isinstance(res, dict):
        got = res.get("layers")
    if got is None or not all(isinstance(c, LayerCost) for c in got):
        raise TypeError(f"aimc.cost.estimate(...) returned {type(res).__name__} without a list of LayerCost "
                        "in .layers; pass analog= as a list of LayerCost instead")
    return list(got)


def memory_wall(layers: list[LayerWork], baseline: str | VonNeumannSpec = "gpu-a100",
                batches: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048),
                analog=None) -> dict[str, Any]:
    """Energy and time per inference on a von Neumann baseline across batch sizes.

    Args:
        layers: the workload.
        baseline: a ``gpu``/``cpu`` preset name, path or spec.
        batches: batch sizes to evaluate (each >= 1).
        analog: the analog side (see :func:`analog_costs`); ``None`` leaves it out.

    Returns:
        A tidy dict: scalars ``baseline``, ``precision``, ``weight_bytes``, ``ridge_ops_per_byte``;
        lists over ``batch``: ``energy_pJ``, ``weights_pJ`` (DRAM + SRAM staging of
        weights), ``activations_pJ``, ``mac_pJ``, ``static_pJ``, ``latency_ns`` (per
        inference), ``weight_energy_share`` (weights / total), ``weight_dynamic_share``
        (weights / dynamic energy, i.e. without static), ``weight_energy_share_incl_static``
        (adding the idle energy burnt while weights stream: ``static * t_w / t``),
        ``weight_time_share`` (weight transfer time / run time), ``memory_bound_share``
        (share of run time in memory-bound layers), ``tops_per_w``; and ``analog``:
        ``None`` or ``{energy_pJ, weights_pJ (0), latency_ns, tops_per_w, breakdown}``.
    """
    spec = load_baseline(baseline)
    if not isinstance(spec, VonNeumannSpec):
        raise ValueError(f"memory_wall: baseline must be a gpu or cpu preset, got {spec.name!r} ({spec.kind})")
    if not layers:
        raise ValueError("memory_wall: layers is empty")
    bs = [int(b) for b in batches]
    if not bs or min(bs) < 1:
        raise ValueError(f"memory_wall: batches must be non-empty and >= 1, got {list(batches)}")
    ops = 2.0 * sum(w.macs for w in layers)
    keys = ("energy_pJ", "weights_pJ", "activations_pJ", "mac_pJ", "static_pJ", "latency_ns",
            "weight_energy_share", "weight_dynamic_share", "weight_energy_share_incl_static", "weight_time_share",
            "memory_bound_share", "tops_per_w")
    out: dict[str, Any] = {k: [] for k in keys}
    bw = spec.mem_bw_GBps * 1e9
    for b in bs:
        costs = price_baseline(layers, spec, b)
        r = roofline_arrays(layers, spec, b)
        e = float(sum(c.total_pJ for c in costs))
        ew = float(sum(c.detail_pJ["weights"] for c in costs))
        es = float(sum(c.energy_pJ["static"] for c in costs))
        t = float(r["t_ns"].sum())
        t_w = float(r["w_bytes"].sum() / bw * 1e9)
        out["energy_pJ"].append(e)
        out["weights_pJ"].append(ew)
        out["activations_pJ"].append(float(sum(c.detail_pJ["activations"] for c in costs)))
        out["mac_pJ"].append(float(sum(c.energy_pJ["digital"] for c in costs)))
        out["static_pJ"].append(es)
        out["latency_ns"].append(t / b)
        out["weight_energy_share"].append(ew / e)
        out["weight_dynamic_share"].append(ew / (e - es) if e > es else 0.0)
        out["weight_energy_share_incl_static"].append((ew + es * (t_w / t if t > 0 else 0.0)) / e)
        out["weight_time_share"].append(t_w / t if t > 0 else 0.0)
        mem = r["t_memory_ns"] >= r["t_compute_ns"]
        out["memory_bound_share"].append(float(r["t_ns"][mem].sum() / t) if t > 0 else 0.0)
        out["tops_per_w"].append(ops / e)  # ops / pJ = 1e12 ops / J = TOPS/W
    out.update(batch=bs, baseline=spec.name, precision=spec.precision,
               weight_bytes=float(roofline_arrays(layers, spec, 1)["w_bytes"].sum()),
               ridge_ops_per_byte=spec.ridge_ops_per_byte, analog=None)
    ac = analog_costs(layers, analog)
    if ac is not None:
        ea = float(sum(c.total_pJ for c in ac))
        out["analog"] = {
            "energy_pJ": ea, "weights_pJ": 0.0,
            "latency_ns": float(sum(c.latency_ns for c in ac)),
            "tops_per_w": float(2.0 * sum(c.macs for c in ac) / ea) if ea > 0 else float("nan"),
            "breakdown": {k: float(sum(c.energy_pJ.get(k, 0.0) for c in ac)) for k in BREAKDOWN}}
    return out
