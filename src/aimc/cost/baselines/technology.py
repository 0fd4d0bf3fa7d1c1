"""Technology constants shared by the digital baselines: Horowitz's 45 nm energies and
the Stillmaker-Baas scaling of switching energy from 45 nm to another node.

Horowitz (ISSCC 2014, "Computing's energy problem (and what we can do about it)",
Fig. 1.1.9 / the "rough energy costs for various operations in 45 nm 0.9 V" table):
8b add 0.03 pJ, 32b add 0.1 pJ, 8b mult 0.2 pJ, 32b mult 3.1 pJ, 16b FP add 0.4 pJ,
32b FP add 0.9 pJ, 16b FP mult 1.1 pJ, 32b FP mult 3.7 pJ; a 64-bit SRAM read 10 pJ
(8 kB), 20 pJ (32 kB), 100 pJ (1 MB); a 64-bit DRAM access 1.3-2.6 nJ.

Energy per operation scales between nodes by the ratio of Stillmaker & Baas's fitted
polynomials ``a*Vdd**2 + b*Vdd + c`` (A. Stillmaker, B. Baas, "Scaling equations for the
accurate prediction of CMOS device performance from 180 nm to 7 nm", Integration, the
VLSI Journal 58, 74-81 (2017), energy-scaling table).

Example:
    >>> round(node_energy_scale(7, 0.7), 4)   # 45 nm at 0.9 V -> 7 nm at 0.7 V
    0.0566
    >>> HOROWITZ_45NM_PJ["mac_int8"], HOROWITZ_45NM_PJ["mac_fp16"]
    (0.3, 2.0)
"""
from __future__ import annotations

import numpy as np

__all__ = ["HOROWITZ_45NM_PJ", "HOROWITZ_VDD_V", "STILLMAKER_ENERGY_POLY", "node_energy_scale"]

#: Horowitz ISSCC 2014 energies at 45 nm, 0.9 V, in pJ. A MAC is a multiply plus an
#: accumulate in the wider format tensor units use: int8 = 8b mult + 32b add; fp16 =
#: fp16 mult + fp32 add (mixed precision); fp32 = fp32 mult + fp32 add. SRAM and DRAM
#: are per bit (64-bit access energy / 64).
HOROWITZ_45NM_PJ: dict[str, float] = {
    "mac_int8": 0.3,   # 0.2 + 0.1
    "mac_fp16": 2.0,   # 1.1 + 0.9
    "mac_fp32": 4.6,   # 3.7 + 0.9
    "sram_8kB_per_bit": 10.0 / 64,
    "sram_32kB_per_bit": 20.0 / 64,
    "sram_1MB_per_bit": 100.0 / 64,
    "dram_per_bit_low": 1300.0 / 64,
    "dram_per_bit_high": 2600.0 / 64,
}

#: Supply of Horowitz's 45 nm figures.
HOROWITZ_VDD_V = 0.9

#: Stillmaker & Baas (2017) energy-scaling polynomial coefficients (a, b, c), by node in nm.
STILLMAKER_ENERGY_POLY: dict[int, tuple[float, float, float]] = {
    130: (7.171, -6.709, 2.904),
    90: (4.762, -4.781, 2.092),
    65: (3.755, -4.398, 1.975),
    45: (1.103, -0.362, 0.2767),
    32: (0.9559, -0.7823, 0.471),
    20: (0.373, -0.1582, 0.04104),
    16: (0.2958, -0.1241, 0.03024),
    14: (0.2363, -0.09675, 0.02239),
    10: (0.2068, -0.09311, 0.02375),
    7: (0.1776, -0.09097, 0.02447),
}


def _poly(node_nm: float, vdd_V: float) -> float:
    nodes = np.array(sorted(STILLMAKER_ENERGY_POLY))
    if not nodes[0] <= node_nm <= nodes[-1]:
        raise ValueError(f"node_nm must be within the Stillmaker-Baas fit, {nodes[0]}..{nodes[-1]} nm, "
                         f"got {node_nm}")
    vals = np.array([np.polyval(STILLMAKER_ENERGY_POLY[int(n)], vdd_V) for n in nodes])
    return float(np.interp(node_nm, nodes, vals))  # linear between tabulated nodes


def node_energy_scale(node_nm: float, vdd_V: float) -> float:
    """Factor that takes a 45 nm / 0.9 V energy (Horowitz) to ``node_nm`` at ``vdd_V``.

    Args:
        node_nm: target technology node, 7..130 nm (linear interpolation between the
            tabulated nodes).
        vdd_V: supply voltage at the target node.

    Returns:
        energy(node, vdd) / energy(45 nm, 0.9 V).

    Example:
        >>> node_energy_scale(45, 0.9)
        1.0
    """
    if vdd_V <= 0:
        raise ValueError(f"vdd_V must be > 0, got {vdd_V}")
    return _poly(node_nm, vdd_V) / _poly(45, HOROWITZ_VDD_V)
