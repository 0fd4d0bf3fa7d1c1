"""aimc: an open, vendor-neutral toolchain for analog in-memory computing.

Example:
    >>> import torch, aimc
    >>> model = torch.nn.Sequential(torch.nn.Linear(16, 4))
    >>> analog = aimc.convert(model, aimc.chips.load("pcm-hermes"))
    >>> aimc.program(analog, seed=0)
    >>> aimc.drift(analog, t_s=3600.0)
    >>> y = analog(torch.randn(2, 16))
"""
from aimc import chips
from aimc.nn.convert import compensate, convert, drift, program

__version__ = "0.1.0"
__all__ = ["chips", "convert", "program", "drift", "compensate", "__version__"]
