"""Drop-in analog PyTorch layers and whole-model conversion."""
from aimc.nn.base import AnalogLayerMixin
from aimc.nn.convert import CONVERSIONS, analog_layers, compensate, convert, drift, program
from aimc.nn.layers import AnalogConv1d, AnalogConv2d, AnalogLinear
from aimc.nn.io import Checkpoint, load_state, read_checkpoint, save_state

__all__ = ["AnalogLayerMixin", "AnalogLinear", "AnalogConv1d", "AnalogConv2d", "CONVERSIONS",
           "convert", "program", "drift", "compensate", "analog_layers", "save_state", "load_state",
           "read_checkpoint", "Checkpoint"]
