"""Drop-in analog PyTorch layers and whole-model conversion."""
from aimc.nn.base import AnalogLayerMixin
from aimc.nn.attention import AnalogMultiheadAttention
from aimc.nn.table import CONVERSION_RULES
from aimc.nn.convert import CONVERSIONS, analog_layers, compensate, conversion_target, convert, drift, program
from aimc.nn.layers import AnalogConv1d, AnalogConv2d, AnalogConv3d, AnalogLinear
from aimc.nn.moe import AnalogExperts, AnalogTopKRouter
from aimc.nn.recurrent import AnalogGRU, AnalogLSTM, AnalogRNN
from aimc.nn.report import ConversionReport, conversion_report
from aimc.nn.transposed import AnalogConvTranspose1d, AnalogConvTranspose2d
from aimc.nn.io import Checkpoint, load_state, read_checkpoint, save_state
from aimc.nn.kernel_attention import KernelAttention, KernelAttentionConfig, RandomFeatureMap, use_kernel_attention

__all__ = ["AnalogLayerMixin", "AnalogLinear", "AnalogConv1d", "AnalogConv2d", "AnalogConv3d",
           "AnalogConvTranspose1d", "AnalogConvTranspose2d", "AnalogMultiheadAttention", "AnalogLSTM", "AnalogGRU",
           "AnalogRNN", "AnalogExperts", "AnalogTopKRouter", "CONVERSIONS", "CONVERSION_RULES", "conversion_target",
           "convert", "conversion_report", "ConversionReport",
           "program", "drift", "compensate", "analog_layers", "save_state", "load_state", "read_checkpoint",
           "Checkpoint", "KernelAttention", "KernelAttentionConfig", "RandomFeatureMap", "use_kernel_attention"]
