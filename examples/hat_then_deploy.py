"""Hardware-aware training (HAT) of a small model for a chip, then deployment.

Trains the digits CNN digitally, then fine-tunes a copy through a differentiable model of
``pcm-hermes`` (``aimc.train.fit.hat_finetune``: device noise, expected drift, DAC/ADC
quantisation; the default ``HATConfig``). Both models are programmed on the same three
chips and read one year after programming with global drift compensation. The HAT model
is saved as a ``weights`` checkpoint (what ``aimc train`` writes: the weights to program,
not a chip) into a temporary directory and read back.

Run: ``python examples/hat_then_deploy.py`` (needs ``aimc[data]``).
"""
from __future__ import annotations

import copy
import statistics
import tempfile
from pathlib import Path

import torch

import aimc
from aimc.train.digital import accuracy, train_digital
from aimc.train.fit import hat_finetune
from aimc.train.hat import HATConfig
from aimc.workloads.data import load_digits
from aimc.workloads.models import digits_cnn

ONE_YEAR_S = 3.15e7
CHIP_SEEDS = [0, 1, 2]


def accuracy_after_a_year(analog: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """Test accuracy on each chip one year after programming, with compensation."""
    accs = []
    for seed in CHIP_SEEDS:
        aimc.program(analog, seed=seed)
        aimc.drift(analog, t_s=ONE_YEAR_S)
        aimc.compensate(analog)
        accs.append(accuracy(analog, x, y))
    return accs


def main() -> None:
    torch.set_num_threads(1)
    x_train, y_train, x_test, y_test = load_digits(seed=0)
    model = train_digital(digits_cnn(seed=0), x_train, y_train, epochs=15, lr=3e-3, batch_size=32, seed=0)
    print(f"digital: {100 * accuracy(model, x_test, y_test):.2f} %")

    plain = aimc.convert(copy.deepcopy(model), "pcm-hermes")
    hat = hat_finetune(model, x_train, y_train, "pcm-hermes", HATConfig(), epochs=5, lr=1e-3,
                       batch_size=32, seed=0)
    for name, analog in (("plain training", plain), ("hardware-aware", hat)):
        accs = accuracy_after_a_year(analog, x_test, y_test)
        print(f"{name:<15} 1 year, GDC: {100 * statistics.mean(accs):.2f} ± {100 * statistics.stdev(accs):.2f} %"
              f"  ({len(accs)} chips)")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hat.safetensors"
        aimc.nn.save_state(hat, path, kind="weights", model_spec={"name": "digits-cnn"},
                           run={"dataset": "digits", "method": "hat"})
        ck = aimc.nn.read_checkpoint(path)
        print(f"checkpoint: kind {ck.kind}, {len(ck.state)} tensors, chips of {sorted(ck.chips)}, run {ck.run}")


if __name__ == "__main__":
    main()
