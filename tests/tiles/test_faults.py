"""Fault maps on tiles: exact fault values, repair by spare columns and pruning, bad input."""
import pytest
import torch

import aimc
from aimc.chips import load
from aimc.physics.defects import FAULT_OK, FAULT_OPEN, FAULT_STUCK_ON, DefectModel
from aimc.physics.devices import DeviceState
from aimc.tiles import encode, mvm, program_tiles, read_matrices
from aimc.tiles.faults import apply_faults, draw_faults, repair, used_cols

HEAVY = DefectModel(d0_per_cm2=3000.0, alpha=None)  # ~20 defects per tile: repair has work to do


def _setup(chip="pcm-hermes", shape=(40, 300), dies=16, spare=8, model=HEAVY, seed=0):
    chip = load(chip)
    enc = encode(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), chip)
    raw = draw_faults(enc.layout, model, torch.full((dies,), model.d0_per_cm2 / 100.0), 0.635, spare,
                      torch.Generator().manual_seed(seed + 1))
    return chip, enc, raw


def _error(codes, enc, chip):
    """Per die: sum |w_faulty - w_target| over every weight (slice-combined, no noise)."""
    from aimc.tiles.faults import fault_values
    g = fault_values(codes, enc.g_target_uS, chip)
    w = lambda a: (a[:, :, 0] - a[:, :, 1]).sum(dim=1) if a.dim() == 6 else (a[:, 0] - a[:, 1]).sum(dim=0)
    return (w(g) - w(enc.g_target_uS)).abs().flatten(1).sum(dim=1)


def test_no_defects_no_faults():
    chip, enc, raw = _setup(model=DefectModel(d0_per_cm2=0.0))
    assert not bool(raw.any())
    codes = repair(raw, enc.g_target_uS, enc.used, enc.layout, chip, 8, prune=True)
    assert not bool(codes.any())


def test_fault_values_exact_on_ideal_chip():
    chip = load("ideal")
    w = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    enc = encode(w, chip)
    codes = torch.zeros_like(enc.g_target_uS, dtype=torch.uint8)
    codes[0, 0, 0, 2, 1] = FAULT_STUCK_ON  # G+ of weight (1, 2) at g_max: reads +scale
    codes[0, 1, 0, 4, 0] = FAULT_OPEN  # G- of weight (0, 4) conducts nothing
    tiles = program_tiles(enc, chip, torch.Generator().manual_seed(0), codes)
    assert torch.equal(tiles.state.drift[codes != FAULT_OK], torch.zeros(2))
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    want = w.clone()
    scale = w.abs().amax(dim=1)
    want[1, 2] = scale[1] * (1.0 - max(-float(w[1, 2]), 0.0) / float(scale[1]))  # G+ = g_max, G- as programmed
    want[0, 4] = max(float(w[0, 4]), 0.0)
    y = mvm(x, read_matrices(tiles, chip, 0.0), chip)
    torch.testing.assert_close(y, x @ want.t(), atol=1e-5, rtol=1e-5)
    same = program_tiles(enc, chip, torch.Generator().manual_seed(0), torch.zeros_like(codes))
    assert torch.equal(same.state.g_uS, enc.g_target_uS)


def test_spares_strictly_help_and_never_hurt():
    chip, enc, raw = _setup()
    cw = used_cols(enc.layout)
    without = repair(raw[..., :cw, :, :], enc.g_target_uS, enc.used, enc.layout, chip, 0)
    with_sp = repair(raw, enc.g_target_uS, enc.used, enc.layout, chip, 8)
    e0, e1 = _error(without, enc, chip), _error(with_sp, enc, chip)
    assert bool((e1 <= e0 + 1e-3).all())
    assert float(e1.sum()) < 0.8 * float(e0.sum())
    pruned = repair(raw, enc.g_target_uS, enc.used, enc.layout, chip, 8, prune=True)
    assert bool((_error(pruned, enc, chip) <= e1 + 1e-3).all())


def test_padding_rows_carry_no_fault():
    """Padding rows and the physical rows below each tile's used ones hold no weight: no
    fault reaches a device that carries current."""
    chip, enc, raw = _setup(shape=(10, 301))  # 2 input tiles of 151 used rows (1 padding), 105 empty below
    codes = repair(raw, enc.g_target_uS, enc.used, enc.layout, chip, 8)
    assert codes.shape[-2] == enc.layout.rows_used == 151 and tuple(raw.shape[3:4]) == (256,)
    assert not bool(codes[:, :, :, ~enc.used].any())


def test_program_with_faults_lowers_accuracy_deterministically():
    torch.manual_seed(0)
    model = aimc.convert(torch.nn.Sequential(torch.nn.Linear(30, 20)), "pcm-hermes")
    layer = model[0]
    enc = encode(layer.analog_weight().detach(), layer.chip)
    raw = draw_faults(enc.layout, HEAVY, torch.full((2,), 30.0), 0.635, 0, torch.Generator().manual_seed(0))
    codes = repair(raw, enc.g_target_uS, enc.used, enc.layout, layer.chip, 0)
    aimc.program(model, seed=1, faults={"0": codes[0]})
    g1 = layer.g_uS.clone()
    aimc.program(model, seed=1, faults={"0": codes[0]})
    assert torch.equal(g1, layer.g_uS)
    assert bool((g1[codes[0] == FAULT_OPEN] == 0).all())


def test_bad_input():
    chip, enc, raw = _setup(dies=1)
    with pytest.raises(ValueError, match="spare_cols=4"):
        repair(raw, enc.g_target_uS, enc.used, enc.layout, chip, 4)
    with pytest.raises(ValueError, match="multiple of mapping.slices"):
        draw_faults(encode(torch.randn(3, 5), load("isaac")).layout, HEAVY, torch.ones(1), 0.6, 3,
                    torch.Generator())
    with pytest.raises(ValueError, match="tile_area_mm2"):
        draw_faults(enc.layout, HEAVY, torch.ones(1), 0.0, 0, torch.Generator())
    st = DeviceState(enc.g_target_uS, torch.zeros_like(enc.g_target_uS))
    with pytest.raises(ValueError, match="do not match"):
        apply_faults(st, torch.zeros(1, 2, 3, dtype=torch.uint8), chip)
    model = aimc.convert(torch.nn.Sequential(torch.nn.Linear(3, 2)), "ideal")
    with pytest.raises(ValueError, match="not analog layers"):
        aimc.program(model, faults={"nope": torch.zeros(1)})


def test_spare_rows_mend_dead_rows():
    rows_only = DefectModel(d0_per_cm2=3000.0, alpha=None, fatal_share=0.0, row_share=1.0, col_share=0.0)
    chip = load("pcm-hermes")
    enc = encode(torch.randn(40, 200, generator=torch.Generator().manual_seed(0)), chip)
    raw = draw_faults(enc.layout, rows_only, torch.full((16,), 30.0), 0.635, 0, torch.Generator().manual_seed(2), 8)
    assert tuple(raw.shape) == (16, 1, 1, 264, 40, 1, 2)
    R = enc.layout.rows
    e0 = _error(repair(raw[..., :R, :, :, :], enc.g_target_uS, enc.used, enc.layout, chip, 0), enc, chip)
    e1 = _error(repair(raw, enc.g_target_uS, enc.used, enc.layout, chip, 0, spare_rows=8), enc, chip)
    assert bool((e1 <= e0 + 1e-3).all()) and float(e1.sum()) < 0.5 * float(e0.sum())
