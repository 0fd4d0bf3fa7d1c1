"""The fused C++ programming + read-matrix pass of PCM (aimc.tiles.progfused, issue 12):
the device model's statistics, the PyTorch path's numbers bit for bit where the draws are
the same (no noise), and the same chip whatever the number of threads."""
import math

import pytest
import torch

from aimc import cpp
from aimc.chips import load
from aimc.physics.devices import DeviceState
from aimc.physics.pcm import PCMHermes
from aimc.tiles import crossbar, encode, progfused, read_matrices
from aimc.tiles.crossbar import ProgrammedTiles
from aimc.tiles.multichip import stack_tiles
from aimc.tiles.seeded import seeded_read_matrices, seeded_state

pytestmark = pytest.mark.skipif(not cpp.available(), reason="needs the compiled kernels")


def _generic(monkeypatch):
    monkeypatch.setattr(progfused, "fused_usable", lambda *a: None)


def _quiet(name: str, **chip):
    """The chip with programming noise and drift off (every device at its target, nu = 0)."""
    c = load(name)
    dev = c.device.model_copy(update={"prog_noise_scale": 0.0, "drift_scale": 0.0})
    return c.model_copy(update={"device": dev, **chip})


def _sparse_weights(n_out, n_in, seed=0):
    """Weights whose |w| / max|w| per column is 0 or >= 0.16: PCM-HERMES's read-noise
    amplitude Q_s is then its polynomial branch or a clip (no log/pow result enters)."""
    w = torch.randn(n_out, n_in, generator=torch.Generator().manual_seed(seed))
    return torch.where(w.abs() < 0.8, torch.zeros(()), w)


@pytest.mark.parametrize("name,extra", [("pcm-hermes", {}), ("pcm-hermes", {"rows": 64, "cols": 32}),
                                        ("pcm", {"ir_drop": {"mode": "first_order", "r_wire_ohm": 0.5}})])
def test_fused_equals_the_pytorch_path_bit_for_bit_without_noise(monkeypatch, name, extra):
    """Targets written exactly and no drift: the state, and the read matrices (drift at
    t0 and later, first-order IR drop over several physical tiles, w in float32 and
    bfloat16, read-noise variances in bfloat16 and as one-byte codes with their scales)
    equal the device model's PyTorch path exactly."""
    chip = _quiet(name)
    if "ir_drop" in extra:
        extra = {"ir_drop": chip.ir_drop.model_copy(update=extra["ir_drop"])}
    chip = chip.model_copy(update=extra)
    if name == "pcm":  # PCM's Q_s uses a power: no read noise in the exact comparison
        chip = chip.model_copy(update={"noise": chip.noise.model_copy(update={"read_noise": False})})
    enc = encode(_sparse_weights(300, 600), chip)
    assert progfused.fused_usable(chip, enc.g_target_uS) is not None
    fused = {"state": seeded_state(enc, chip, 3)}
    tiles = ProgrammedTiles(enc.layout, fused["state"], enc.scale)
    two = stack_tiles([tiles, tiles])  # a chip dimension (Monte Carlo): (S, 2, C, T, R, out)
    for t in (0.0, 3600.0):
        fused[t] = (read_matrices(tiles, chip, t),
                    seeded_read_matrices(enc, chip, 3, t, w_dtype=torch.bfloat16, var_codes=True)[0],
                    read_matrices(two, chip, t))
    assert fused[3600.0][0].var is not None or name == "pcm"
    _generic(monkeypatch)
    state = seeded_state(enc, chip, 3)
    assert torch.equal(state.g_uS, fused["state"].g_uS) and torch.equal(state.drift, fused["state"].drift)
    assert torch.equal(state.g_uS, torch.where(enc.used[None, None, :, :, None], enc.g_target_uS, 0.0))
    for t in (0.0, 3600.0):
        generic = (read_matrices(tiles, chip, t),
                   seeded_read_matrices(enc, chip, 3, t, w_dtype=torch.bfloat16, var_codes=True)[0],
                   read_matrices(two, chip, t))
        for a, b in zip(fused[t], generic):
            assert a.w.dtype == b.w.dtype and torch.equal(a.w, b.w)
            assert (a.var is None) == (b.var is None) and (a.var is None or torch.equal(a.var, b.var))
            assert (a.var_scale is None) == (b.var_scale is None)
            assert a.var_scale is None or torch.equal(a.var_scale, b.var_scale)
    assert fused[3600.0][1].var_scale is not None or name == "pcm"


def test_fused_equals_the_pytorch_path_with_slices(monkeypatch):
    """Two slices per weight on adjacent physical columns (the IR drop's column order)."""
    chip = _quiet("pcm-hermes", rows=64, cols=32)
    chip = chip.model_copy(update={"mapping": chip.mapping.model_copy(update={"slices": 2, "slice_base": 4.0})})
    enc = encode(_sparse_weights(40, 100, 1), chip)
    tiles = ProgrammedTiles(enc.layout, seeded_state(enc, chip, 1), enc.scale)
    a = read_matrices(tiles, chip, 86_400.0)
    _generic(monkeypatch)
    b = read_matrices(tiles, chip, 86_400.0)
    assert torch.equal(a.w, b.w) and torch.equal(a.var, b.var)


def test_fused_noisy_read_matches_the_pytorch_path_to_float_rounding(monkeypatch):
    """With drift and 1/f noise the kernel's log/exp differ from ATen's by ~1 ulp: weights
    agree to float32 rounding, variances (bfloat16) to one bfloat16 step."""
    chip = load("pcm-hermes")
    enc = encode(torch.randn(100, 300, generator=torch.Generator().manual_seed(2)), chip)
    tiles = ProgrammedTiles(enc.layout, seeded_state(enc, chip, 9), enc.scale)
    a = read_matrices(tiles, chip, 86_400.0)
    _generic(monkeypatch)
    b = read_matrices(tiles, chip, 86_400.0)
    assert float((a.w - b.w).abs().max()) <= 4 * 2.0**-24 * float(b.w.abs().max())
    rel = (a.var.float() - b.var.float()).abs() / b.var.float().abs().clamp(min=1e-30)
    assert float(rel.max()) <= 2.0**-7


@pytest.mark.parametrize("name", ["pcm-hermes", "pcm"])
def test_fused_draws_have_the_device_statistics(name):
    """Programming noise z = (g - g_T) / sigma(g_T) and drift exponents (nu - mu) / sigma_nu
    from the counter-based generator are standard normal: mean and std within 5 sigma of
    their sampling error, no correlation between the two draws of a device or between
    neighbouring devices (|r| < 5 / sqrt(n)), at three conductance levels where neither
    draw is clipped at 0 (mu / sigma_nu > 5: a clipped mass below 3e-7)."""
    chip = load(name)
    dev = chip.device
    levels = torch.tensor([0.3, 0.5, 0.6])
    pick = torch.randint(0, 3, (256, 512), generator=torch.Generator().manual_seed(0))
    w = levels[pick] * torch.sign(torch.randn(256, 512, generator=torch.Generator().manual_seed(1)))
    w[0, 0] = 1.0  # per-tensor scale 1: targets at levels * g_max
    per_tensor = chip.mapping.model_copy(update={"weight_scaling": "per_tensor"})
    enc = encode(w, chip.model_copy(update={"mapping": per_tensor}))
    assert progfused.fused_usable(chip, enc.g_target_uS) is not None
    st = seeded_state(enc, chip, 5)
    on = (enc.g_target_uS > 0.1 * dev.g_max_uS) & (enc.g_target_uS < 0.9 * dev.g_max_uS)  # SET devices at the levels
    g_t = enc.g_target_uS[on]
    z = ((st.g_uS[on] - g_t) / dev.prog_noise_std_uS(g_t)).double()
    mu, sd = dev.drift_mean_std(g_t)
    assert float((mu / sd).min()) > 5
    z_nu = ((st.drift[on] - mu) / sd).double()
    n = z.numel()
    for v in (z, z_nu):
        assert abs(float(v.mean())) < 5 / math.sqrt(n)
        assert abs(float(v.std()) - 1.0) < 5 / math.sqrt(2 * n)
    for a, b in ((z, z_nu), (z[:-1], z[1:]), (z_nu[:-1], z_nu[1:])):
        assert abs(float(torch.corrcoef(torch.stack([a, b]))[0, 1])) < 5 / math.sqrt(a.numel())


def test_same_seed_same_chip_whatever_the_threads(monkeypatch):
    """The fused draws and reads depend on (targets, seed) alone: 1 and 2 threads, and
    blocks of one output tile each, give the same state and matrices bit for bit."""
    chip = load("pcm-hermes").model_copy(update={"cols": 64})
    enc = encode(torch.randn(200, 300, generator=torch.Generator().manual_seed(4)), chip)
    before = torch.get_num_threads()
    out = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            st = seeded_state(enc, chip, 21)
            out.append((st, seeded_read_matrices(enc, chip, 21, 86_400.0)[0]))
    finally:
        torch.set_num_threads(before)
    (s1, r1), (s2, r2) = out
    assert torch.equal(s1.g_uS, s2.g_uS) and torch.equal(s1.drift, s2.drift)
    assert torch.equal(r1.w, r2.w) and torch.equal(r1.var, r2.var)
    assert not torch.equal(seeded_state(enc, chip, 22).g_uS, s1.g_uS)


def test_the_fused_pass_applies_only_where_it_implements_the_model():
    """Another device model, a subclass that overrides a formula, the exact IR-drop solver
    or float64 conductances take the device model's own PyTorch path."""
    chip = load("pcm-hermes")
    g = torch.zeros(1, 2, 1, 4, 4)
    assert progfused.fused_usable(chip, g) is not None
    assert progfused.fused_usable(load("rram-1t1r"), g) is None
    assert progfused.fused_usable(chip, g.double()) is None
    exact = chip.model_copy(update={"ir_drop": chip.ir_drop.model_copy(update={"mode": "exact"})})
    assert progfused.fused_usable(exact, g) is None

    class Faster(PCMHermes):  # a changed formula: the kernel would not compute it
        def at_time(self, state: DeviceState, t_s: float) -> torch.Tensor:
            return state.g_uS

    assert progfused.kernel_params(Faster()) is None
    with pytest.raises(RuntimeError, match="does not apply"):
        progfused.draw_block(g, torch.ones(1, 4, dtype=torch.bool), load("rram-1t1r"), 0)


def test_generic_device_models_still_program_lean(monkeypatch):
    """RRAM (no fused kernel) is drawn from torch.Generator per block, as before."""
    monkeypatch.setattr(crossbar, "BLOCK_DEVICES", 2 * 2 * 256 * 64)
    chip = load("rram-1t1r").model_copy(update={"cols": 64})
    enc = encode(torch.randn(100, 300, generator=torch.Generator().manual_seed(0)), chip)
    rm, _ = seeded_read_matrices(enc, chip, 2, 3600.0)
    full = read_matrices(ProgrammedTiles(enc.layout, seeded_state(enc, chip, 2), enc.scale), chip, 3600.0)
    assert torch.equal(rm.w, full.w)
