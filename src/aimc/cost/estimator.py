"""``estimate``: price a model (or a list of :class:`LayerWork`) on an analog chip.

Each weight layer is mapped onto tiles as the tile read places it
(:class:`aimc.tiles.TileLayout`: ``ceil(K/rows) x ceil(N/(cols/slices))``, times its
convolution groups). Per MVM it pays, component by component (:mod:`aimc.cost.components`):
the input drivers (DAC), the array read ``Σ G V² t`` (data-dependent through the measured
input and weight statistics; ``t`` is the integration window, which follows the chip's
input and ADC bits where the preset gives per-LSB times:
:func:`~aimc.cost.components.integration_time_ns`), one ADC conversion per used column
and cycle (``FoM * 2**bits``; an exact ADC, ``adc.bits: null``, converts nothing: the
partial sums are accumulated digitally, ``b_x + b_w + ceil(log2 rows)`` bits wide,
:meth:`aimc.tiles.Periphery.psum_bits`), the digital
periphery (shift-add, accumulation across row tiles, scaling and activation), buffers and
interconnect, and the chip's static power. Layers are weight-stationary and pipelined:
each owns its tiles, spare tiles hold replicas that share the stream of input vectors,
and the steady-state throughput is set by the slowest layer. A model that needs more
tiles than the chip has is reprogrammed every inference (program-and-verify energy and
time are added). Matrices that are not stationary (attention's ``QK^T``) run in the
digital units at the chip's ``digital.mac_pJ`` per MAC (category ``digital``), each as a
stage of its own, as before the SoC view existed.

The SoC view (:mod:`aimc.cost.soc`): layers named in ``digital=`` run on the chip's
digital units (:class:`~aimc.chips.digital.DigitalConfig`) instead of tiles, and
``host_ops=`` prices the non-MVM work there; the breakdown shows their compute
(``host``), their weight fetches (``host_memory``) and the activations moved between the
analog cores and the digital units (``inter_core``) separately. Without either argument
the prices are those of the analog chip alone.

Example:
    >>> import aimc
    >>> r = aimc.cost.estimate(aimc.cost.mvm_workload(512, 512, 16), "pcm-hermes")
    >>> r.layers[0].tiles, round(r.utilisation, 2), sorted(r.breakdown)[:3]
    (4, 1.0, ['adc', 'array', 'dac'])
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Collection, Mapping

import numpy as np
import torch
from torch import nn

from aimc.chips import ChipSpec, load
from aimc.cost import components as C
from aimc.chips.cost_params import DEFAULT_SOURCES, CostConfig
from aimc.chips.digital import DEFAULT_DIGITAL
from aimc.cost import soc
from aimc.graph.builders import extract_workload_io
from aimc.cost.layer_cost import BREAKDOWN, LayerCost
from aimc.graph.workload import LayerWork
from aimc.tiles import Periphery, TileLayout
__all__ = ["CostReport", "estimate", "summarise"]

#: Input statistics assumed when a workload carries none: inputs and weights uniform in
#: [-1, 1] (E[x²] = 1/3, E|x| = 1/2, E|w| = 1/2), the usual MVM benchmark.
DEFAULT_X_MEAN_SQ, DEFAULT_X_MEAN_ABS, DEFAULT_W_MEAN_ABS = 1.0 / 3.0, 0.5, 0.5


@dataclass
class CostReport:
    """Per-layer and total cost of one inference (batch 1, steady-state pipeline).

    Attributes:
        chip: chip name; ``energy_pJ``: total per inference; ``latency_ns``: one inference
            through all layers; ``throughput_inf_per_s``: pipelined (slowest layer);
        tops: *pipelined* throughput, 2 ops per MAC per slowest-layer stage time (layers
            overlap on successive inferences; what a chip's peak TOPS figure means);
            :attr:`tops_latency` is 2 ops per MAC per ``latency_ns`` (one inference at a
            time, what the README's model tables report);
        tops_per_w, tops_per_mm2: 2 ops per MAC per joule / per mm² (``tops_per_mm2``
            from the pipelined ``tops``); ``area_mm2``: whole chip;
        utilisation: weights / allocated cells; ``tiles_used`` (one replica of each layer);
        fits: the model fits the chip without reprogramming;
        programming_energy_pJ: one-time cost of programming all weights;
        breakdown: energy per :data:`BREAKDOWN` category; ``layers``: :class:`LayerCost` list;
        baseline: the same summary for a baseline (see ``estimate(baseline=...)``), or None;
        cost_sources: citations of the parameters used.
    """

    chip: str
    energy_pJ: float
    latency_ns: float
    throughput_inf_per_s: float
    tops: float
    tops_per_w: float
    tops_per_mm2: float
    area_mm2: float
    utilisation: float
    tiles_used: int
    fits: bool
    programming_energy_pJ: float
    breakdown: dict[str, float]
    layers: list[LayerCost]
    baseline: dict[str, Any] | None = None
    cost_sources: list[str] = field(default_factory=list)

    @property
    def tops_latency(self) -> float:
        """2 ops per MAC / ``latency_ns``: throughput with one inference at a time (no
        pipelining across layers), in TOPS."""
        ops = 2.0 * sum(lc.macs for lc in self.layers)
        return ops / self.latency_ns / 1e3 if self.latency_ns > 0 else 0.0

    def table(self) -> list[dict[str, Any]]:
        """Tidy rows, one per layer and category: ``{layer, category, energy_pJ}``."""
        return [{"layer": lc.name, "category": k, "energy_pJ": float(lc.energy_pJ.get(k, 0.0))}
                for lc in self.layers for k in BREAKDOWN]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (layers as dicts with their breakdown)."""
        d = {k: getattr(self, k) for k in ("chip", "energy_pJ", "latency_ns", "throughput_inf_per_s", "tops",
                                             "tops_per_w", "tops_per_mm2", "area_mm2", "utilisation",
                                             "tiles_used", "fits", "programming_energy_pJ", "breakdown",
                                             "baseline", "cost_sources")}
        d["tops_latency"] = self.tops_latency
        d["layers"] = [_layer_dict(lc) for lc in self.layers]
        return d


def _layer_dict(lc: LayerCost) -> dict[str, Any]:
    return {"name": lc.name, "label": lc.title, "energy_pJ": lc.total_pJ, "breakdown": {k: float(lc.energy_pJ.get(k, 0.0)) for k in BREAKDOWN},
            "latency_ns": lc.latency_ns, "macs": lc.macs, "tiles": lc.tiles, "utilisation": lc.utilisation,
            "area_mm2": lc.area_mm2}


def summarise(layers: list[LayerCost], area_mm2: float | None = None) -> dict[str, Any]:
    """Totals of any hardware's :class:`LayerCost` list (layers run one after another).

    Example:
        >>> s = summarise([LayerCost("a", {"adc": 2.0}, 10.0, 5)])
        >>> s["energy_pJ"], s["tops_per_w"]
        (2.0, 5.0)
    """
    energy = float(sum(lc.total_pJ for lc in layers))
    latency = float(sum(lc.latency_ns for lc in layers))
    ops = 2.0 * sum(lc.macs for lc in layers)
    tops = ops / latency / 1e3 if latency > 0 else 0.0
    out = {"energy_pJ": energy, "latency_ns": latency, "tops": tops, "tops_per_w": ops / energy if energy else 0.0,
           "breakdown": {k: float(sum(lc.energy_pJ.get(k, 0.0) for lc in layers)) for k in BREAKDOWN},
           "layers": [_layer_dict(lc) for lc in layers]}
    if area_mm2:
        out["area_mm2"], out["tops_per_mm2"] = float(area_mm2), tops / area_mm2
    return out


def _workload(model_or_workload, inputs) -> list[LayerWork]:
    if isinstance(model_or_workload, LayerWork):
        return [model_or_workload]
    if isinstance(model_or_workload, nn.Module):
        if not isinstance(inputs, torch.Tensor):
            raise ValueError("inputs: a model needs an example input tensor (batch first) to measure its layers")
        work = extract_workload_io(model_or_workload, inputs)  # + unique input sizes (baselines)
        if not work:
            kinds = sorted({type(m).__name__ for m in model_or_workload.modules()
                            if any(p.dim() >= 2 for p in m.parameters(recurse=False))})
            raise ValueError(f"estimate: {type(model_or_workload).__name__} has no layer this cost model prices "
                             "(nn.Linear, nn.Conv*, nn.ConvTranspose*, nn.LSTM/GRU/RNN and their analog "
                             f"versions); its weight layers are {', '.join(kinds) or 'none'}. Price other "
                             "matrices as a list of aimc.graph.workload.LayerWork")
        return work
    work = list(model_or_workload)
    if not work or not all(isinstance(w, LayerWork) for w in work):
        raise ValueError("model_or_workload must be an nn.Module or a non-empty list of LayerWork")
    return work


def _stat(work: list[LayerWork], attr: str, default: float) -> np.ndarray:
    vals = [getattr(w, attr, None) for w in work]
    arr = np.array([default if v is None else float(v) for v in vals])
    if ((arr < 0) | (arr > 1)).any():
        raise ValueError(f"LayerWork.{attr} must lie in [0, 1] (inputs normalised by their abs-max)")
    return arr


def _chip_area_mm2(chip: ChipSpec, c: CostConfig) -> tuple[float, float]:
    tile = c.tile_area_mm2 or C.tile_area_mm2(chip.rows, chip.cols, c.cell_area_F2, c.tech_node_nm, c.adcs_per_tile,
                                              c.adc_area_um2, c.dac_area_um2, c.tile_digital_area_um2)
    return tile, chip.n_tiles * tile + c.chip_extra_area_mm2


#: Word width of an exact partial sum whose weights have no finite precision (a continuous
#: analog device under an exact ADC): the float32 words of the simulator's exact read.
EXACT_FLOAT_BITS = 32


def _converter_bits(spec: ChipSpec, per: Periphery) -> tuple[int, int]:
    """Input bits and output word bits of ``spec``'s tiles (module doc). An exact ADC's word
    is the exact partial sum, ``b_x + b_w + ceil(log2 rows)`` bits for a device with ``bits``
    or ``n_levels`` (``b_w = ceil(log2 levels) + 1``, the sign from the differential pair),
    else :data:`EXACT_FLOAT_BITS`. An exact DAC (``dac.bits: null``, the ``ideal`` chip)
    has no published driver to price and is costed at the 8-bit drive of the cost
    parameters (``t_int_ns``, ``dac_energy_pJ``)."""
    in_bits = 8 if spec.dac.bits is None else int(spec.dac.bits)  # per.dac_max is None iff bits is None
    if spec.adc.bits is not None:  # per.adc_max likewise
        return in_bits, int(spec.adc.bits)
    levels = getattr(spec.device, "n_levels", None)
    if levels is None:
        return in_bits, EXACT_FLOAT_BITS
    w_bits = int(np.ceil(np.log2(levels))) + 1
    return in_bits, per.psum_bits(in_bits, w_bits, spec.rows)


def estimate(model_or_workload, chip: str | ChipSpec = "pcm-hermes", inputs: torch.Tensor | None = None,
             baseline: str | None = None, *, replicate: bool = True, batch: int = 1,
             digital: Collection[str] | None = None, host_ops: Mapping[str, int] | None = None,
             tiles_placed: int | None = None) -> CostReport:
    """Energy, latency, throughput and area of one inference on an analog chip.

    Args:
        model_or_workload: an ``nn.Module`` (with ``inputs``) or a list of :class:`LayerWork`.
        chip: preset name, YAML path or :class:`ChipSpec`; its ``cost:`` section (or the
            defaults) gives the parameters.
        inputs: example input batch for a model: measures layer shapes and input statistics.
        baseline: a baseline preset (``gpu-a100``, ``gpu-h100``, ``cpu-xeon``, ``dimc-22nm``;
            :func:`aimc.cost.baselines.names`) or YAML path, priced on the same workload for
            comparison. Digital IMC is priced as a system with this chip's own buffers,
            interconnect, digital periphery and static power (see
            :func:`aimc.cost.baselines.dimc.price_dimc`), so the two differ only in the arrays.
        replicate: fill spare tiles with copies of the layers (more throughput).
        batch: inferences per baseline call (GPUs amortise weight reads over a batch).
        digital: names of weight layers (:attr:`LayerWork.name`) to run on the chip's
            digital units instead of tiles (:mod:`aimc.cost.soc`); they take no tiles.
        host_ops: non-MVM work on the digital units, ``{op kind: elements per inference}``
            (kinds: :data:`aimc.chips.digital.HOST_OP_KINDS`, e.g. ``Graph.host_ops()``);
            reported as a last pseudo-layer ``host ops``.
        tiles_placed: tiles one copy of the stationary layers occupies as a placement packs
            them (:func:`aimc.compile.place.place` lets small blocks share a tile); decides
            whether the model fits and how many replicas the spare tiles hold. ``None``: one
            tile per block, ``sum(t_in * t_out * groups)``.

    Returns:
        A :class:`CostReport`.

    Raises:
        ValueError: a name in ``digital`` that is no layer of the workload, an unknown op
            kind or a negative count in ``host_ops``, or digital weights that fit nowhere.
    """
    spec = load(chip)
    c = spec.cost or CostConfig(sources=DEFAULT_SOURCES)
    dig = spec.digital or DEFAULT_DIGITAL
    work = _workload(model_or_workload, inputs)
    names = [w.name for w in work]
    if isinstance(digital, str):
        raise ValueError(f"digital: a collection of layer names, not the string {digital!r} (write [{digital!r}])")
    unknown = sorted(set(digital or ()) - set(names))
    if unknown:
        raise ValueError(f"digital: {', '.join(map(repr, unknown))} not a layer of the workload "
                         f"(its layers: {', '.join(names[:12])}{', ...' if len(names) > 12 else ''})")
    ops = soc.check_host_ops(host_ops or {}, dig, spec.name)
    slices = spec.mapping.slices
    per = Periphery.of(spec)
    in_bits, adc_bits = _converter_bits(spec, per)
    on_host = np.array([w.name in set(digital or ()) for w in work])
    stationary = np.array([bool(getattr(w, "stationary", True)) for w in work])
    on_host &= stationary  # a non-stationary matrix runs digitally anyway
    stationary = stationary & ~on_host  # from here on: held in tiles
    K = np.array([w.in_features for w in work], dtype=float)
    N = np.array([w.out_features for w in work], dtype=float)
    n_mvm = np.array([w.n_mvm for w in work], dtype=float)
    groups = np.array([w.groups for w in work], dtype=float)
    macs = K * N * n_mvm
    xsq, xabs = _stat(work, "x_mean_sq", DEFAULT_X_MEAN_SQ), _stat(work, "x_mean_abs", DEFAULT_X_MEAN_ABS)
    wabs = _stat(work, "w_mean_abs", DEFAULT_W_MEAN_ABS)

    lays = [TileLayout(int(k), int(n), spec.rows, spec.cols, slices) for k, n in zip(K, N)]
    cols_w = lays[0].cols_w  # weight columns per tile
    tk, tn = (np.array([getattr(lay, a) for lay in lays], dtype=float) for a in ("t_in", "t_out"))
    tiles = np.where(stationary, tk * tn * groups, 0.0)
    total_tiles = int(tiles.sum()) if tiles_placed is None else int(tiles_placed)
    fits = total_tiles <= spec.n_tiles
    reps = max(1, spec.n_tiles // total_tiles) if (replicate and fits and total_tiles) else 1
    reps_l = np.minimum(reps, n_mvm)

    cycles = C.read_cycles(c.input_scheme, in_bits, c.dac_bits_per_cycle)
    # integration window per read: PWM pulses scale with the input levels, and a counting
    # ADC needs 2^bits LSB times (both only when the preset gives the per-LSB reference)
    t_lsb = c.adc_t_lsb_ns if per.adc_max is not None else None  # an exact ADC has no counting window
    t_int = C.integration_time_ns(c.input_scheme, in_bits, adc_bits, c.t_int_ns, c.pwm_ref_bits, t_lsb)
    t_read = C.read_time_ns(c.input_scheme, in_bits, t_int, c.dac_bits_per_cycle, spec.cols,
                            c.adcs_per_tile, c.adc_conv_ns, c.adc_overlap, c.phases)
    reads = c.phases * cycles  # array reads per MVM per tile
    act = C.input_activity(c.input_scheme, xsq, xabs)
    tile_reads = n_mvm * tk * tn  # per inference (n_mvm already counts groups)

    # array: used cells at the weights' conductance, unused cells of driven rows at g_min
    dev = spec.device
    g_w = C.weight_conductance_uS(wabs, dev.g_min_uS, dev.g_max_uS, c.devices_per_polarity)
    g_idle = 2 * c.devices_per_polarity * dev.g_min_uS
    g_sum = K * N * slices * g_w + K * (tn * spec.cols - N * slices) * g_idle  # per MVM, all its tiles
    if c.array_read_pJ is None:
        act_i = xabs if c.v_supply_V else act  # current ~ |x| whatever the scheme
        e_array = n_mvm * reads * C.array_energy_pJ(g_sum, c.v_read_V, t_int, act_i, c.v_supply_V)
    else:
        e_array = tile_reads * reads * c.array_read_pJ * (t_int / c.t_int_ns) * act  # power x window
    e_dac = n_mvm * C.dac_energy_pJ(K * tn, c.dac_energy_pJ, act, reads)
    conversions = n_mvm * reads * tk * N * slices if per.adc_max is not None else np.zeros_like(K)
    e_adc = conversions * C.adc_energy_pJ(adc_bits, c.adc_fom_fJ)
    needs_sa = slices > 1 or cycles > 1
    e_dig = n_mvm * C.digital_energy_pJ(reads * tk * N * slices, N, tk, c.shift_add_pJ, c.accum_pJ,
                                        c.scale_act_pJ, needs_sa)
    e_dig = e_dig + tile_reads * c.digital_power_mW * t_read
    n_bytes = n_mvm * (K * tn * in_bits / 8 + N * tk * adc_bits / 8)
    e_move = C.data_movement_energy_pJ(n_bytes, c.sram_pJ_per_byte, c.noc_pJ_per_byte_hop, c.avg_hops)
    e_move = e_move + tile_reads * c.buffer_power_mW * t_read

    # non-stationary matrices: digital MACs on the layer's operands
    zero = np.zeros_like(K)
    e_array, e_dac, e_adc = (np.where(stationary, e, zero) for e in (e_array, e_dac, e_adc))
    e_dig = np.where(stationary, e_dig, np.where(on_host, 0.0, macs * dig.mac_pJ))
    e_move = np.where(on_host, zero, e_move)
    lat = np.ceil(n_mvm / reps_l) * t_read + c.avg_hops * c.hop_latency_ns
    lat = np.where(stationary, lat, macs / dig.macs_per_ns)
    x_el = np.array([getattr(w, "x_elements", None) or k * m for w, k, m in zip(work, K, n_mvm)], dtype=float)
    link = bool(stationary.any())  # activations cross to the digital units only if some layer is analog
    soc_e = soc.digital_layers(dig, K, N, groups, n_mvm, x_el, on_host, link, names, spec.name)
    lat = np.where(on_host, soc_e["latency_ns"], lat)
    host = soc.host_ops_cost(ops, dig, link) if ops else None

    # programming: one-time; every inference when the model does not fit
    n_devices = K * N * slices * groups * 2 * c.devices_per_polarity * stationary
    e_prog = C.programming_energy_pJ(n_devices, c.program_pulses, c.program_pulse_pJ)
    e_array = e_array if fits else e_array + e_prog
    if not fits:
        lat = lat + C.programming_time_ns(tiles, spec.rows, c.program_row_ns, spec.n_tiles)

    # pipelined steady state: the slowest stage sets the rate; the digital units are one
    # stage running the digital layers and the host ops one after another
    lat_all = np.append(lat, host["latency_ns"] if host else 0.0)
    host_stage = float(lat[on_host].sum()) + (host["latency_ns"] if host else 0.0)
    stage = max(float(lat[~on_host].max(initial=0.0)), host_stage)
    e_static = C.static_energy_pJ(c.static_power_mW, stage) * lat_all / lat_all.sum()
    tile_area, area = _chip_area_mm2(spec, c)
    util = np.where(tiles > 0, K * N * groups / np.maximum(tiles * spec.rows * cols_w, 1), 1.0)

    layers = []
    for i, w in enumerate(work):
        e = {"array": e_array[i], "dac": e_dac[i], "adc": e_adc[i], "digital": e_dig[i],
             "data_movement": e_move[i], "host": soc_e["host"][i], "host_memory": soc_e["host_memory"][i],
             "inter_core": soc_e["inter_core"][i], "static": e_static[i]}
        layers.append(LayerCost(w.name, {k: float(v) for k, v in e.items()}, float(lat[i]), int(macs[i]),
                                area_mm2=float(tiles[i] * reps_l[i] * tile_area), tiles=int(tiles[i]),
                                utilisation=float(util[i]),
                                detail_pJ={"programming": float(e_prog[i]) if not fits else 0.0},
                                label=w.label))
    if host:
        e = {k: 0.0 for k in BREAKDOWN} | {"host": host["host"], "inter_core": host["inter_core"],
                                           "static": float(e_static[-1])}
        layers.append(LayerCost("host ops", e, host["latency_ns"], 0,
                                label="host ops: " + ", ".join(f"{k} {n:g}" for k, n in ops.items())))
    energy = float(sum(lc.total_pJ for lc in layers))
    n_ops = 2.0 * float(macs.sum())
    tops = n_ops / stage / 1e3
    util_all = float((K * N * groups * stationary).sum() / max(total_tiles * spec.rows * cols_w, 1)) if total_tiles else 1.0
    report = CostReport(
        chip=spec.name, energy_pJ=energy, latency_ns=float(lat_all.sum()), throughput_inf_per_s=1e9 / stage,
        tops=tops, tops_per_w=n_ops / energy, tops_per_mm2=tops / area, area_mm2=area, utilisation=util_all,
        tiles_used=total_tiles, fits=fits, programming_energy_pJ=float(e_prog.sum()),
        breakdown={k: float(sum(lc.energy_pJ[k] for lc in layers)) for k in BREAKDOWN}, layers=layers,
        cost_sources=list(c.sources) + list(dig.sources))
    if baseline is not None:
        report.baseline = _price_baseline(work, baseline, batch, c)
    return report


def _price_baseline(work: list[LayerWork], name: str, batch: int, system: CostConfig) -> dict[str, Any]:
    """Summary of a baseline on the same workload. Area: a GPU/CPU's die; digital IMC: the
    sum of its macros' areas (the silicon the model occupies)."""
    from aimc.cost.baselines import DIMCSpec, load_baseline, price_baseline

    spec = load_baseline(name)
    costs = price_baseline(work, spec, batch=batch, system=system if isinstance(spec, DIMCSpec) else None)
    area = sum(lc.area_mm2 for lc in costs) if isinstance(spec, DIMCSpec) else spec.die_area_mm2
    out = summarise(costs, area)
    out["name"] = spec.name
    return out
