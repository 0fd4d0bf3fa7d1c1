"""Device physics: pure functions and cited, frozen parameter sets (no nn.Module here).

Inference device models register in :data:`DEVICES`; pulsed-update responses for on-chip
training are :class:`PulsedDevice` configs (:mod:`aimc.physics.pulsed`, named fits in
:data:`PULSED_PRESETS`).
"""
from aimc.physics.devices import DEVICES, DeviceModel, DeviceState, Ideal
from aimc.physics.pulsed import PULSED_PRESETS, PulsedDevice

# Importing the family modules registers them.
from aimc.physics import ecram, pcm, rram, sram  # noqa: E402,F401

__all__ = ["DEVICES", "DeviceModel", "DeviceState", "Ideal", "PulsedDevice", "PULSED_PRESETS"]
