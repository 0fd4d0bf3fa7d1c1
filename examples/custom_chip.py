"""Write your own chip as YAML, load it, and run a model on it.

A chip file states the array geometry, the device model in each cell, the DAC, the ADC,
output noise, weight mapping and wire resistance (``docs/chip-spec.md`` lists every field,
generated from the JSON Schema). This script writes a 128x128 RRAM chip with 6-bit ADCs
into a temporary directory, loads it with ``aimc.chips.load`` (every field is validated),
compares it with the ``ideal`` preset on the digits CNN, and shows the one-line error a
mistyped file gets.

Run: ``python examples/custom_chip.py`` (needs ``aimc[data]``).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch

import aimc
from aimc.config import ConfigError
from aimc.train.digital import accuracy, train_digital
from aimc.workloads.data import load_digits
from aimc.workloads.models import digits_cnn

CHIP_YAML = """\
name: my-rram
description: 128x128 HfOx RRAM tiles with 6-bit ADCs (an example, not a published design).
sources: ["device statistics: the rram preset's defaults (aimc.physics.rram)"]
rows: 128
cols: 128
n_tiles: 32
device: {kind: rram, g_max_uS: 40.0, on_off_ratio: 10.0, n_levels: 16}
dac: {bits: 8, noise_management: abs_max}
adc: {bits: 6, bound: 10.0, bound_management: true, bm_max_iter: 3}
noise: {read_noise: true, out_noise: 0.02}
mapping: {weight_scaling: per_column, slices: 2, slice_base: 1.0}
ir_drop: {mode: none}
"""


def main() -> None:
    torch.set_num_threads(1)
    x_train, y_train, x_test, y_test = load_digits(seed=0)
    model = train_digital(digits_cnn(seed=0), x_train, y_train, epochs=15, lr=3e-3, batch_size=32, seed=0)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "my-rram.yaml"
        path.write_text(CHIP_YAML)
        chip = aimc.chips.load(path)
        print(f"loaded {chip.name}: {chip.rows}x{chip.cols} x {chip.n_tiles} tiles, device {chip.device.kind}, "
              f"{chip.adc.bits}-bit ADC, {chip.mapping.slices} device pairs per weight")

        for spec in ("ideal", chip):
            analog = aimc.convert(model, spec)
            aimc.program(analog, seed=0)
            aimc.drift(analog, t_s=3600.0)
            name = spec if isinstance(spec, str) else spec.name
            print(f"{name:<8} accuracy 1 h after programming: {100 * accuracy(analog, x_test, y_test):.2f} %")

        bad = Path(tmp) / "typo.yaml"
        bad.write_text(CHIP_YAML.replace("adc: {bits: 6", "adc: {bitz: 6"))
        try:
            aimc.chips.load(bad)
        except ConfigError as err:
            print(f"a typo is refused, naming the file and the field:\n{err}")
        else:
            raise SystemExit("a chip file with an unknown field was accepted")


if __name__ == "__main__":
    main()
