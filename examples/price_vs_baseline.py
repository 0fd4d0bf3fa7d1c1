"""Price a model on an analog chip and compare it with a GPU and with digital IMC.

``aimc.cost.estimate`` prices one inference of the digits CNN on ``pcm-hermes``
component by component (DACs, array read, ADCs, digital periphery, buffers, static power)
from the chip's cited ``cost:`` section and the *measured* input statistics of a batch,
and prices the same workload on a baseline (``aimc baselines`` lists them). The same is
done for 256x256 matrix-vector multiplies filling all 64 tiles of the chip (what
``aimc estimate mvm:256x256`` prices), whose figures reproduce the HERMES chip.

Run: ``python examples/price_vs_baseline.py`` (about a second; no data set needed).
"""
from __future__ import annotations

import torch

from aimc.graph.workload import mvm_workload
from aimc.cost import baselines, estimate
from aimc.workloads.models import digits_cnn


def show(title: str, report) -> None:
    print(f"\n{title}")
    print(f"  {'hardware':<22} {'energy (nJ)':>12} {'latency (us)':>13} {'TOPS/W':>8}")
    print(f"  {report.chip:<22} {report.energy_pJ / 1e3:>12.3f} {report.latency_ns / 1e3:>13.3f} "
          f"{report.tops_per_w:>8.2f}")
    b = report.baseline
    print(f"  {b['name']:<22} {b['energy_pJ'] / 1e3:>12.3f} {b['latency_ns'] / 1e3:>13.3f} {b['tops_per_w']:>8.2f}")


def main() -> None:
    print("baselines:", ", ".join(baselines.names()))
    model = digits_cnn(seed=0).eval()
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))  # example inputs
    for baseline in ("gpu-a100", "dimc-22nm"):
        report = estimate(model, "pcm-hermes", inputs=x, baseline=baseline)
        show(f"digits CNN on pcm-hermes vs {baseline}", report)
    top = max(report.breakdown, key=report.breakdown.get)
    print(f"  largest share of the analog energy: {top} "
          f"({100 * report.breakdown[top] / report.energy_pJ:.0f} %)")

    mvm = estimate(mvm_workload(256, 256, 64), "pcm-hermes", baseline="gpu-a100")  # 64 copies: 64 tiles
    show("64 x one 256x256 MVM, streaming vectors", mvm)
    print(f"  pcm-hermes chip: {mvm.tops:.1f} TOPS, {mvm.tops_per_w:.2f} TOPS/W "
          "(published one-phase: 63.1 TOPS, 9.76 TOPS/W)")


if __name__ == "__main__":
    main()
