"""Sorting cost model: closed forms and scaling."""
import math

import pytest

from aimc.cost.sorting import SortCostConfig, digital_sort_cost, sim_sort_cost


def test_digital_merge_tree_closed_form():
    c = SortCostConfig()
    d = digital_sort_cost(1024, 32, c)
    per_key = 10 * (0.1 + 64 * 10 / 64) * 40 / 45
    assert math.isclose(d.energy_pJ_per_key, per_key) and math.isclose(d.latency_ns_per_key, 1.0)
    assert digital_sort_cost(2048, 32, c).energy_pJ_per_key == pytest.approx(per_key * 11 / 10)
    with pytest.raises(ValueError, match="n >= 1"):
        digital_sort_cost(0, 32, c)


def test_sim_cost_is_linear_in_counts():
    c = SortCostConfig()
    kw = dict(digits=32, levels=2, rows=256, banks=1, states=2, g_mean_uS=22.0, cfg=c)
    a = sim_sort_cost(100, 1000, 5000, 10, 0, **kw)
    b = sim_sort_cost(100, 2000, 10000, 20, 0, **kw)
    readout = a.breakdown_pJ["readout"]
    assert math.isclose(b.energy_pJ - readout, 2 * (a.energy_pJ - readout))
    assert math.isclose(a.time_ns, 1000 * c.t_read_ns)
    # cells: G V^2 t per active cell
    assert math.isclose(a.breakdown_pJ["cells"], 5000 * 22.0 * 0.04 * c.t_read_ns * 1e-3)
    multi = sim_sort_cost(100, 1000, 5000, 10, 0, **{**kw, "banks": 4})
    assert math.isclose(multi.time_ns, 1000 * (c.t_read_ns + c.t_or_ns)) and multi.area_um2 == pytest.approx(4 * a.area_um2)


def test_dram_passes():
    c = SortCostConfig()
    d = digital_sort_cost(1024, 32, c, memory="dram")
    assert math.isclose(d.energy_pJ_per_key, 10 * (0.1 * 40 / 45 + 64 * 2000 / 64))
    assert math.isclose(d.latency_ns_per_key, 10 * max(1.0, 8 / 25.6))
    with pytest.raises(ValueError, match="memory"):
        digital_sort_cost(4, 8, c, memory="hbm")
