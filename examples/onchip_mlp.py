"""On-chip training: a tiny MLP whose weights live on pulsed RRAM devices.

``aimc.train.onchip.fit_onchip`` trains a 64-32-10 MLP on the 8x8 digits with its weights
on the ``rram-1t1r`` chip's pulsed device (the ``pulsed:`` section of its chip spec:
aihwkit's ReRAM soft-bounds fit): forward and
backward reads are exact, updates are stochastic pulse trains, the bias stays digital.
Tiki-Taka v2 is compared with plain analog SGD and with digital SGD on the same MLP.

Run: ``python examples/onchip_mlp.py`` (needs ``aimc[data]``).
"""
from __future__ import annotations

import torch

from aimc.train.onchip import fit_digital, fit_onchip
from aimc.workloads.data import load_digits

EPOCHS = 8
HIDDEN = 32


def main() -> None:
    torch.set_num_threads(1)
    x_train, y_train, x_test, y_test = load_digits(seed=0)
    for method, lr in (("analog-sgd", 0.05), ("tiki-taka-v2", 0.1)):
        result = fit_onchip(x_train, y_train, chip="rram-1t1r", method=method, hidden=HIDDEN, epochs=EPOCHS,
                            lr=lr, seed=0, x_test=x_test, y_test=y_test)
        curve = " ".join(f"{100 * row['test_accuracy']:.1f}" for row in result.history)
        print(f"{method:<13} test accuracy per epoch (%): {curve}")
    digital = fit_digital(x_train, y_train, hidden=HIDDEN, epochs=EPOCHS, seed=0, x_test=x_test, y_test=y_test)
    print(f"{'digital SGD':<13} final test accuracy: {100 * digital.test_accuracy:.1f} %")


if __name__ == "__main__":
    main()
