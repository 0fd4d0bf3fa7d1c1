"""Device physics: pure functions and cited, frozen parameter sets (no nn.Module here)."""
from aimc.physics.devices import DEVICES, DeviceModel, DeviceState, Ideal

# Importing the family modules registers them.
from aimc.physics import ecram, pcm, rram, sram  # noqa: E402,F401

__all__ = ["DEVICES", "DeviceModel", "DeviceState", "Ideal"]
