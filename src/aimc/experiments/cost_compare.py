"""Analog vs digital IMC vs GPU for a CNN and a transformer block: one table.

Each model is priced per inference at batch 1 on three machines:

* **analog** (``pcm-hermes`` through :func:`aimc.cost.estimate`): weight layers in PCM
  crossbars. Attention's activation x activation products (``stationary=False``) cannot
  be programmed into PCM every inference, so they run on a digital co-processor, priced
  here as the digital IMC baseline (a hybrid, as analog transformer designs propose).
* **digital IMC** (``dimc-22nm``): every layer in SRAM macros, exact integer arithmetic,
  wrapped in the *same* system-level components as the analog chip (buffers,
  interconnect, accumulation/scaling/activation, static power, with the analog chip's
  ``cost`` parameters; :func:`aimc.cost.baselines.dimc.price_dimc`), so the two differ only
  in their arrays.
* **GPU** (``gpu-a100``, int8 tensor cores): per-layer roofline.

With ``low_precision`` (as ``main`` and the README use, :data:`LOW_PRECISION`) two more
rows per model price the same chips at low precision: the analog chip with 4-bit inputs and
6-bit ADCs (:func:`low_precision_chip`: its PWM read time and energy and its CCO ADC's
window and energy follow the bits, see :func:`aimc.cost.components.integration_time_ns`),
and the digital IMC at 4b x 4b, the published operating point of its macro (Chih et al.,
ISSCC 2021: 89 TOPS/W, 16.3 TOPS/mm2). Weights stay analog conductances on the analog chip
(its weight precision is set by PCM noise, not a bit width).

Two efficiencies are reported: the system TOPS/W (all energy), and the compute-core TOPS/W
(analog: array read + DAC + ADC; digital IMC: the macros; GPU: the MACs alone, with no
memory traffic or idle power), so a macro-level claim and a chip-level claim are never
compared with each other.

Latency is the sum of the layers' latencies (no pipelining across layers at batch 1);
TOPS = 2 * MACs / latency; TOPS/mm2 divides by the silicon the model occupies (analog
tiles, DIMC macros, the GPU die); weights/mm2 is the stored weight density of that
silicon (a GPU's weights live off-chip).

Run ``python -m aimc.experiments.cost_compare`` to print the README table.

Example:
    >>> from aimc.graph.builders import mlp_workload
    >>> rows = compare({"mlp": mlp_workload([256, 256])}, analog=None)
    >>> [r["hardware"] for r in rows]
    ['digital IMC (dimc-22nm)', 'GPU (gpu-a100)']
"""
from __future__ import annotations

import math
from typing import Any

import torch

from aimc.cost.baselines import load_baseline, price_baseline
from aimc.graph.builders import extract_workload_io, is_stationary, transformer_block_workload, weights_stored
from aimc.experiments.memory_wall import analog_costs
from aimc.chips.cost_params import CostConfig
from aimc.cost.layer_cost import LayerCost
from aimc.graph.workload import LayerWork
__all__ = ["comparison_workloads", "compare", "format_table", "low_precision_chip", "mvm_error", "main",
           "LOW_PRECISION"]

PRECISION = {
    "analog": "approximate: {bits}, PCM programming/read noise and drift",
    "dimc": "exact int{bx} x int{bw} (bit-serial, adder tree)",
    "gpu": "exact int8 (int32 accumulate)",
}

#: The low-precision point of the README table. Analog: 4-bit inputs and 6-bit ADCs, a
#: low-precision setting of published AIMC design studies (6-bit column ADCs with 3-4-bit
#: activations: PRIME, Chi et al., ISCA 2016; DNN+NeuroSim V2, Peng et al., IEEE TCAD 2020).
#: Digital IMC: 4b x 4b, the operating point of Chih et al.'s published 89 TOPS/W and
#: 16.3 TOPS/mm2 (ISSCC 2021).
LOW_PRECISION = {"dac_bits": 4, "adc_bits": 6, "dimc_input_bits": 4, "dimc_weight_bits": 4}


def comparison_workloads(seed: int = 0) -> dict[str, list[LayerWork]]:
    """The two models of the table: ``fashion_cnn`` (one 1x28x28 image, input statistics
    measured on a seeded random image) and a transformer block (d=512, 8 heads, d_ff=2048,
    128 tokens)."""
    from aimc.workloads.models import fashion_cnn
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 1, 28, 28, generator=g)
    return {"fashion_cnn": extract_workload_io(fashion_cnn(seed=seed), x),
            "transformer_block": transformer_block_workload(512, 8, 2048, 128)}


def _row(model: str, hardware: str, note: str, layers: list[LayerWork], costs: list[LayerCost]) -> dict[str, Any]:
    macs = sum(w.macs for w in layers)
    e = sum(c.total_pJ for c in costs)
    t = sum(c.latency_ns for c in costs)
    area = sum(c.area_mm2 for c in costs)
    tops = 2.0 * macs / t * 1e-3 if t > 0 else math.nan          # ops/ns = 1e9 ops/s -> 1e-3 TOPS
    wmove = sum(c.detail_pJ.get("weights", 0.0) for c in costs)
    stored = sum(weights_stored(w) for w in layers if is_stationary(w))
    on_chip = not hardware.startswith("GPU")  # a GPU keeps its weights off-chip, in HBM
    core = sum(_core_pJ(hardware, c) for c in costs)
    return {"model": model, "hardware": hardware, "macs": int(macs), "energy_uJ": e * 1e-6,
            "latency_us": t * 1e-3, "tops": tops, "tops_per_w": 2.0 * macs / e if e > 0 else math.nan,
            "core_tops_per_w": 2.0 * macs / core if core > 0 else math.nan,
            "tops_per_mm2": tops / area if area > 0 else math.nan, "area_mm2": area,
            "weight_movement_share": wmove / e if e > 0 else math.nan, "precision": note,
            "weights_per_mm2": stored / area if (on_chip and area > 0) else math.nan}


def _core_pJ(hardware: str, c: LayerCost) -> float:
    """Compute-core energy: analog array + DAC + ADC (an attention product run in digital
    IMC: its macros), digital IMC macros, GPU MACs."""
    if "macro" in c.detail_pJ:
        return c.detail_pJ["macro"]
    if hardware.startswith("analog"):
        return c.energy_pJ.get("array", 0.0) + c.energy_pJ.get("dac", 0.0) + c.energy_pJ.get("adc", 0.0)
    return c.energy_pJ.get("digital", 0.0)


def _system(analog: Any) -> CostConfig | None:
    """The analog chip's cost parameters, to wrap the digital IMC macros in (None: bare macros)."""
    from aimc.chips import ChipSpec, load

    if isinstance(analog, CostConfig):
        return analog
    if not isinstance(analog, (str, ChipSpec)):
        return None
    return load(analog).cost or CostConfig()


def low_precision_chip(chip: Any = "pcm-hermes", dac_bits: int = 4, adc_bits: int = 6):
    """``chip`` with ``dac_bits`` inputs and ``adc_bits`` ADCs, everything else unchanged
    (named ``<name>-<dac>b<adc>b``).

    Example:
        >>> c = low_precision_chip()
        >>> c.name, c.dac.bits, c.adc.bits
        ('pcm-hermes-4b6b', 4, 6)
    """
    from aimc.chips import load

    spec = load(chip)
    return spec.replace(name=f"{spec.name}-{dac_bits}b{adc_bits}b", dac=spec.dac.replace(bits=dac_bits),
                        adc=spec.adc.replace(bits=adc_bits))


def _bits_note(dac: int | None, adc: int | None) -> str:
    if dac == adc:
        return f"{dac}b DAC/ADC"
    return f"{dac}b DAC/{adc}b ADC"


def _analog_rows(model: str, layers: list[LayerWork], analog: Any, dspec: Any, sysc: CostConfig | None,
                 batch: int) -> list[dict[str, Any]]:
    """The analog row of one model (attention products on ``dspec``), or none."""
    from aimc.chips import ChipSpec, load

    stat = [w for w in layers if is_stationary(w)]
    dyn = [w for w in layers if not is_stationary(w)]
    ac = analog_costs(stat, analog)
    if ac is None:
        return []
    hybrid = ac + price_baseline(dyn, dspec, batch, system=sysc)
    if isinstance(analog, (str, ChipSpec)):
        spec = load(analog)
        name, note = spec.name, PRECISION["analog"].format(bits=_bits_note(spec.dac.bits, spec.adc.bits))
    else:
        name, note = "analog", "approximate"
    if dyn:
        note += "; attention products on digital IMC" + ("" if dspec.input_bits == dspec.weight_bits == 8
                                                          else f" ({dspec.input_bits}b x {dspec.weight_bits}b)")
    return [_row(model, f"analog ({name})", note, stat + dyn, hybrid)]


def _dimc_note(dspec: Any) -> str:
    return PRECISION["dimc"].format(bx=dspec.input_bits, bw=dspec.weight_bits)


def compare(workloads: dict[str, list[LayerWork]] | None = None, analog: Any = "pcm-hermes",
            digital: str = "dimc-22nm", gpu: str = "gpu-a100", batch: int = 1,
            system: Any = "same", low_precision: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """Price each workload on the analog chip, digital IMC and a GPU.

    Args:
        workloads: ``{name: layers}``; default :func:`comparison_workloads`.
        analog: chip name or :class:`~aimc.chips.ChipSpec` for :func:`aimc.cost.estimate`,
            a callable ``layers -> list[LayerCost]``, or ``None`` to leave the analog rows
            out. If the estimator is not installed the analog rows are left out.
        digital: digital IMC preset.
        gpu: GPU preset.
        batch: GPU batch (weights read once per batch); IMC costs do not depend on it.
        system: system-level parameters the digital IMC macros are wrapped in: ``"same"``
            (the analog chip's ``cost`` section; bare macros when ``analog`` is not a chip
            name), a chip name, a :class:`~aimc.chips.cost_params.CostConfig`, or ``None`` (bare).
        low_precision: ``None``, or ``{dac_bits, adc_bits, dimc_input_bits,
            dimc_weight_bits}`` (e.g. :data:`LOW_PRECISION`): after each model's rows, the
            analog chip at those DAC/ADC bits (:func:`low_precision_chip`; only when
            ``analog`` is a chip) and the digital IMC at those input x weight bits, both in
            the same system wrapper.

    Returns:
        one dict per (model, hardware): ``energy_uJ``, ``latency_us``, ``tops``,
        ``tops_per_w``, ``core_tops_per_w``, ``tops_per_mm2``, ``area_mm2``, ``weight_movement_share``,
        ``weights_per_mm2``, ``precision`` (a note), ``macs``.
    """
    workloads = comparison_workloads() if workloads is None else workloads
    dspec, gspec = load_baseline(digital), load_baseline(gpu)
    sysc = _system(analog if system == "same" else system)
    from aimc.chips import ChipSpec

    lp = low_precision
    lp_chip = (low_precision_chip(analog, lp["dac_bits"], lp["adc_bits"])
               if lp and isinstance(analog, (str, ChipSpec)) else None)
    lp_dspec = dspec.replace(input_bits=lp["dimc_input_bits"], weight_bits=lp["dimc_weight_bits"]) if lp else None
    wrap = "" if sysc is None else " + system"
    rows = []
    for model, layers in workloads.items():
        if analog is not None:
            rows += _analog_rows(model, layers, analog, dspec, sysc, batch)
        rows.append(_row(model, f"digital IMC ({dspec.name}{wrap})", _dimc_note(dspec), layers,
                         price_baseline(layers, dspec, batch, system=sysc)))
        rows.append(_row(model, f"GPU ({gspec.name})", PRECISION["gpu"], layers,
                         price_baseline(layers, gspec, batch)))
        if lp_chip is not None:
            rows += _analog_rows(model, layers, lp_chip, lp_dspec, sysc, batch)
        if lp_dspec is not None:
            label = f"digital IMC ({dspec.name} {lp_dspec.input_bits}b x {lp_dspec.weight_bits}b{wrap})"
            rows.append(_row(model, label, _dimc_note(lp_dspec), layers,
                             price_baseline(layers, lp_dspec, batch, system=sysc)))
    return rows


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return "n/a"
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of :func:`compare` rows.

    Example:
        >>> from aimc.graph.builders import mlp_workload
        >>> print(format_table(compare({"mlp": mlp_workload([64, 64])}, analog=None)).splitlines()[0])
        | model | hardware | energy/inference (uJ) | latency (us) | TOPS | TOPS/W | core TOPS/W | TOPS/mm2 | weights/mm2 | weight movement | precision |
    """
    head = ("| model | hardware | energy/inference (uJ) | latency (us) | TOPS | TOPS/W | core TOPS/W | TOPS/mm2 "
            "| weights/mm2 | weight movement | precision |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        lines.append(f"| {r['model']} | {r['hardware']} | {_fmt(r['energy_uJ'])} | {_fmt(r['latency_us'])} | "
                     f"{_fmt(r['tops'])} | {_fmt(r['tops_per_w'])} | {_fmt(r['core_tops_per_w'])} | {_fmt(r['tops_per_mm2'])} | "
                     f"{_fmt(r['weights_per_mm2'])} | "
                     f"{r['weight_movement_share']:.0%} | {r['precision']} |")
    return "\n".join(lines)


def mvm_error(chip: Any, times_s: tuple[float, ...] = (1.0, 86400.0), size: int = 256, seed: int = 0) -> list[float]:
    """Relative MVM error ``||y_chip - y|| / ||y||`` of one ``size x size`` matrix with weights
    and inputs uniform in [-1, 1] (512 input vectors), programmed on ``chip`` and read at
    each time after programming (no drift compensation): the precision side of the table.
    ``chip``: a preset name, YAML path or :class:`~aimc.chips.ChipSpec`.

    Example:
        >>> [round(e, 3) for e in mvm_error("ideal", (1.0,), size=16)]
        [0.0]
    """
    import aimc

    g = torch.Generator().manual_seed(seed)
    lin = torch.nn.Linear(size, size, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.rand(size, size, generator=g) * 2 - 1)
    x = torch.rand(512, size, generator=g) * 2 - 1
    with torch.no_grad():
        y = lin(x)
        model = aimc.convert(torch.nn.Sequential(lin), chip)
        aimc.program(model, seed=seed)
        model.eval()
        out = []
        for t in times_s:
            aimc.drift(model, t)
            out.append(float((model(x) - y).norm() / y.norm()))
    return out


def _sram_low_precision(bits_in: int, bits_w: int):
    """``sram-dcim`` (exact digital IMC) at ``bits_in`` inputs and ``bits_w``-bit weights."""
    from aimc.chips import load

    spec = load("sram-dcim")
    return spec.replace(name=f"sram-dcim-{bits_in}b{bits_w}b", dac=spec.dac.replace(bits=bits_in),
                        device=spec.device.replace(bits=bits_w))


def main() -> None:
    """Print the README comparison table (batch 1, with the low-precision rows) and the MVM
    error of each IMC chip, at 8 bits and at the low-precision point."""
    torch.set_num_threads(1)
    lp = LOW_PRECISION
    print(format_table(compare(low_precision=lp)))
    print()
    chips = ["pcm-hermes", low_precision_chip("pcm-hermes", lp["dac_bits"], lp["adc_bits"]), "sram-dcim",
             _sram_low_precision(lp["dimc_input_bits"], lp["dimc_weight_bits"])]
    for chip in chips:
        e1, eday = mvm_error(chip)
        name = chip if isinstance(chip, str) else chip.name
        print(f"relative MVM error, 256x256 uniform weights and inputs, {name}: "
              f"{e1:.1%} at 1 s, {eday:.1%} after 1 day (no drift compensation)")


if __name__ == "__main__":
    main()
