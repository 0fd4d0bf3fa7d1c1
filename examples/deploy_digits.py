"""Deploy a trained model on a simulated PCM chip and watch its accuracy over time.

Trains the demo CNN on scikit-learn's 8x8 digits, converts it for ``pcm-hermes``
(``aimc.convert``), programs three chips (``aimc.program``, programming noise), lets them
drift from 1 s to 1 year (``aimc.drift``) and reads the test accuracy with and without
global drift compensation (``aimc.compensate``). Finally the programmed chip is saved and
loaded back (``aimc.nn.save_state``/``load_state``) into a temporary directory.

Run: ``python examples/deploy_digits.py`` (a few seconds on 2 cores; needs ``aimc[data]``).
"""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import torch

import aimc
from aimc.train.digital import accuracy, train_digital
from aimc.workloads.data import load_digits
from aimc.workloads.models import digits_cnn

TIMES_S = {"1 s": 1.0, "1 day": 86_400.0, "1 year": 3.15e7}
CHIP_SEEDS = [0, 1, 2]


def main() -> None:
    torch.set_num_threads(1)  # tensors this small run fastest on one thread
    x_train, y_train, x_test, y_test = load_digits(seed=0)
    model = train_digital(digits_cnn(seed=0), x_train, y_train, epochs=15, lr=3e-3, batch_size=32, seed=0)
    print(f"digital accuracy: {100 * accuracy(model, x_test, y_test):.2f} %")

    analog = aimc.convert(model, "pcm-hermes")  # Linear/Conv -> analog tiles, the rest digital
    print(f"{'time':<8} {'no compensation':>18} {'with GDC':>18}")
    for label, t_s in TIMES_S.items():
        raw, gdc = [], []
        for seed in CHIP_SEEDS:  # one programmed chip per seed
            aimc.program(analog, seed=seed)
            aimc.drift(analog, t_s=t_s)
            raw.append(accuracy(analog, x_test, y_test))
            aimc.compensate(analog)
            gdc.append(accuracy(analog, x_test, y_test))
            aimc.compensate(analog, enable=False)
        print(f"{label:<8} {_pct(raw):>18} {_pct(gdc):>18}")

    # A programmed chip is a state_dict: save it and load it into a model built the same way.
    aimc.program(analog, seed=0)
    aimc.drift(analog, t_s=86_400.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chip.safetensors"
        aimc.nn.save_state(analog, path)
        again = aimc.convert(digits_cnn(seed=0), "pcm-hermes")
        aimc.nn.load_state(again, path)
        same = all(torch.equal(a, b) for a, b in zip(analog.state_dict().values(), again.state_dict().values()))
        print(f"saved and reloaded the programmed chip ({path.stat().st_size} bytes): identical state: {same}")
        assert same


def _pct(values: list[float]) -> str:
    return f"{100 * statistics.mean(values):.2f} ± {100 * statistics.stdev(values):.2f} %"


if __name__ == "__main__":
    main()
