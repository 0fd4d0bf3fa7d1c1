"""Lean programmed chips (aimc.program(..., store="lean")): the devices redrawn from a seed
per layer, bit for bit, equal in statistics to stored ones, saved and loaded as a seed."""
import math

import pytest
import torch
from torch import nn

import aimc
from aimc.chips import load
from aimc.nn import load_state, read_checkpoint, save_state
from aimc.physics.devices import DeviceState
from aimc.tiles import crossbar, encode, read_matrices
from aimc.tiles.crossbar import ProgrammedTiles
from aimc.tiles.seeded import seeded_read_matrices, seeded_read_matrices_at, seeded_state


def _layer(n_in=300, n_out=40, chip="pcm-hermes", seed=0):
    torch.manual_seed(seed)
    return aimc.convert(nn.Linear(n_in, n_out), chip)


def _fresh_read(layer, x):
    layer._read_gen = None  # the read-noise stream of the layer's current time, from its start
    with torch.no_grad():
        return layer(x)


def test_redrawn_matrices_equal_those_of_the_stored_state_block_by_block(monkeypatch):
    """Several blocks (whole output tiles) each from its own seed; the redraw equals the
    matrices of the whole state, at every time, and one draw for two times equals two."""
    monkeypatch.setattr(crossbar, "BLOCK_DEVICES", 2 * 2 * 256 * 64)  # 64 columns (one tile of 64) per block
    chip = load("pcm-hermes").model_copy(update={"cols": 64})
    enc = encode(torch.randn(200, 301), chip)  # 2 input tiles of 151 rows, the last one padding
    st = seeded_state(enc, chip, 11)
    assert st.g_uS.shape == enc.g_target_uS.shape and bool((st.g_uS[:, :, ~enc.used] == 0).all())  # padding
    for t in (0.0, 3600.0, 86_400.0):
        rm, signs = seeded_read_matrices(enc, chip, 11, t, signs=True)
        full = read_matrices(ProgrammedTiles(enc.layout, st, enc.scale), chip, t)
        assert torch.equal(rm.w, full.w) and (rm.var is None) == (full.var is None)
        assert rm.var is None or torch.equal(rm.var, full.var)
        w0 = ((st.g_uS[:, 0] - st.g_uS[:, 1]) * enc.scale[:, :, None, :]).sum(dim=0).reshape(-1, 200)[:301]
        assert torch.equal(signs.float(), torch.sign(w0))
    both, _ = seeded_read_matrices_at(enc, chip, 11, (0.0, 86_400.0))
    assert torch.equal(both[1].w, seeded_read_matrices(enc, chip, 11, 86_400.0)[0].w)
    assert not torch.equal(seeded_state(enc, chip, 12).g_uS, st.g_uS)


def test_lean_programming_noise_and_drift_have_the_device_statistics():
    """Redrawn devices follow the device model: programming noise z = (g - g_T) / sigma(g_T)
    and drift exponents (nu - mu) / sigma_nu standard normal, mean and std within 5 sigma of
    their sampling error (n = 2 * 2 * 512 * 256 devices at 10 and 15 µS: no clipping at 0)."""
    chip = load("pcm-hermes")
    dev = chip.device
    w = torch.where(torch.rand(256, 512, generator=torch.Generator().manual_seed(0)) < 0.5, 10.0, 15.0)
    w = w / dev.g_max_uS * torch.sign(torch.randn(256, 512, generator=torch.Generator().manual_seed(1)))
    enc = encode(w, chip.model_copy(update={"mapping": chip.mapping.model_copy(update={"weight_scaling": "per_tensor"})}))
    st = seeded_state(enc, chip, 5)
    on = enc.g_target_uS > 1.0  # the programmed (SET) device of each pair
    g_t = enc.g_target_uS[on]
    z = (st.g_uS[on] - g_t) / dev.prog_noise_std_uS(g_t)
    mu, sd = dev.drift_mean_std(g_t)
    z_nu = (st.drift[on] - mu) / sd
    n = z.numel()
    for v in (z, z_nu):
        assert abs(float(v.mean())) < 5 / math.sqrt(n)
        assert abs(float(v.std()) - 1.0) < 5 / math.sqrt(2 * n)


def test_lean_layer_reads_the_redrawn_chip_with_bfloat16_weights_on_noisy_chips():
    lean, full = _layer(), _layer()
    aimc.program(lean, seed=3, store="lean")
    aimc.program(full, seed=3)
    assert lean.is_lean and not full.is_lean and lean.g_uS.numel() == 0 and lean.drift_state.numel() == 0
    enc = encode(lean.analog_weight(), lean.chip)
    st = seeded_state(enc, lean.chip, int(lean.prog_seed))
    with torch.no_grad():
        full.g_uS, full.drift_state = st.g_uS, st.drift
    for t in (0.0, 86_400.0):
        aimc.drift(lean, t)
        aimc.drift(full, t)
        a, b = lean._read_matrices(), full._read_matrices()
        assert a.w.dtype == torch.bfloat16 and torch.equal(a.w, b.w.to(torch.bfloat16))
        assert (a.var is None) == (b.var is None)
        if a.var is not None:  # one-byte codes (encode_var): within 2^-5 of each variance, + two bfloat16
            # roundings of at most 2^-8 each (b's, and the decoded codes' of dense_var), + their cross terms
            assert a.var.dtype == torch.uint8 and a.var_scale is not None
            tol = (2**-5 + 2**-7 + 2**-10) * b.var.float() + float(a.var_scale.max()) * 2**-15
            assert bool(((a.dense_var().float() - b.var.float()).abs() <= tol).all())
    # the bfloat16 weights read as their float32 values: decoding kernel and batched matmul agree
    x = torch.randn(9, 300)
    one = torch.cat([_fresh_read(lean, x[i:i + 1]) for i in range(9)])
    assert one.shape == (9, 40) and bool(torch.isfinite(one).all())


def test_lean_on_ideal_equals_the_digital_layer_exactly():
    torch.manual_seed(0)
    lin = nn.Linear(300, 20)
    a = aimc.convert(lin, "ideal")
    aimc.program(a, seed=0, store="lean")
    aimc.drift(a, 86_400.0)
    aimc.compensate(a)
    assert a._read_matrices().w.dtype == torch.float32
    x = torch.randn(4, 300)
    with torch.no_grad():
        assert torch.allclose(a(x), lin(x), atol=1e-5, rtol=0)


def test_same_seed_same_lean_chip_and_deferred_reference_equals_the_eager_one():
    """The GDC reference of a lean layer is calibrated at its first compensation (t = 0
    matrices and the t = 0 read-noise stream): at t = 0 the factor is exactly 1, and going
    to a day directly gives the reference and factor of going through t = 0 first."""
    a, b = _layer(), _layer()
    aimc.program(a, seed=4, store="lean")
    aimc.program(b, seed=4, store="lean")
    aimc.compensate(b)  # at t = 0
    assert float(b.gdc) == 1.0
    aimc.drift(a, 86_400.0)
    aimc.drift(b, 86_400.0)
    aimc.compensate(a)  # one redraw for t = 0 and t
    aimc.compensate(b)
    assert float(a.gdc_ref) == float(b.gdc_ref) > 0 and float(a.gdc) == float(b.gdc) > 1.0
    x = torch.randn(3, 300)
    assert torch.equal(_fresh_read(a, x), _fresh_read(b, x))
    c = _layer()
    aimc.program(c, seed=5, store="lean")
    aimc.drift(c, 86_400.0)
    assert not torch.equal(_fresh_read(c, x), _fresh_read(a, x))


def test_lean_chip_saves_as_a_seed_and_loads_bit_for_bit(tmp_path):
    a = _layer()
    aimc.program(a, seed=6, store="lean")
    aimc.drift(a, 3600.0)
    aimc.compensate(a)
    path = save_state(a, tmp_path / "lean.safetensors")
    ck = read_checkpoint(path)
    assert ck.kind == "programmed" and ck.version == 2 and ck.state["g_uS"].numel() == 0
    assert int(ck.state["prog_seed"]) == int(a.prog_seed) >= 0
    b = _layer(seed=1)  # other weights: the file's are loaded
    load_state(b, path)
    assert b.is_lean and float(b.gdc) == float(a.gdc) and float(b.gdc_ref) == float(a.gdc_ref)
    x = torch.randn(2, 300)
    assert torch.equal(_fresh_read(a, x), _fresh_read(b, x))


def test_deferred_reference_is_calibrated_before_saving(tmp_path):
    a, b = _layer(), _layer()
    aimc.program(a, seed=7, store="lean")
    aimc.program(b, seed=7, store="lean")
    aimc.compensate(b)
    ck = read_checkpoint(save_state(a, tmp_path / "c.safetensors"))
    assert float(ck.state["gdc_ref"]) == float(b.gdc_ref) > 0


def test_format_1_programmed_files_load_with_their_stored_devices(tmp_path):
    """A programmed file of format 1 has no prog_seed: its devices are stored (full)."""
    import json

    from safetensors.torch import save_file

    a = _layer()
    aimc.program(a, seed=8)
    state = {k: v.contiguous() for k, v in a.state_dict().items() if k != "prog_seed"}
    header = {"_version": 1, "kind": "programmed", "chips": {"": a.chip.to_dict()}, "model": None, "run": {}}
    save_file(state, str(tmp_path / "v1.safetensors"), metadata={"aimc": json.dumps(header)})
    b = _layer()
    load_state(b, tmp_path / "v1.safetensors")
    assert b.is_programmed and not b.is_lean and torch.equal(b.g_uS, a.g_uS)


def test_lean_errors_name_the_problem():
    a = _layer()
    with pytest.raises(ValueError, match="store must be one of full, lean"):
        aimc.program(a, seed=0, store="thin")
    with pytest.raises(ValueError, match="takes no fault map"):
        a.program_analog(torch.Generator().manual_seed(0), torch.zeros(1, 2, 2, 256, 40, dtype=torch.int8), store="lean")
    aimc.program(a, seed=0, store="lean")
    with torch.no_grad():
        a.weight.mul_(2.0)  # an optimizer step after programming
    aimc.drift(a, 60.0)
    with pytest.raises(RuntimeError, match=r"weights changed \(values or dtype\) since it was programmed"):
        a(torch.randn(1, 300))
    b = _layer()
    aimc.program(b, seed=0, store="lean")
    b.double()
    with pytest.raises(RuntimeError, match="values or dtype"):
        b(torch.randn(1, 300, dtype=torch.float64))


def test_lean_layer_holds_no_device_state():
    """Memory: a lean layer on a noisy chip holds its targets, bfloat16 weights and
    one-byte variance codes (2 + 1 bytes per weight position) and no per-device state."""
    a = _layer(512, 256)
    aimc.program(a, seed=0, store="lean")
    aimc.drift(a, 86_400.0)
    aimc.compensate(a)
    buffers = sum(b.numel() * b.element_size() for b in a.buffers())
    assert buffers < 10_000
    positions = 512 * 256
    assert a.read_cache_bytes() == 3 * positions + 2 * 4 * 2 * 256  # w bf16, var codes; post, var scales f32


@pytest.mark.parametrize("chip", ["pcm-hermes", "pcm"])
def test_encode_scale_equals_the_scales_of_encode(chip):
    from aimc.tiles.crossbar import encode_scale

    spec = load(chip)
    w = torch.randn(70, 600)
    w[:, 3] = 0.0
    w[5] = 0.0
    per_tensor = spec.model_copy(update={"mapping": spec.mapping.model_copy(update={"weight_scaling": "per_tensor"})})
    for c in (spec, per_tensor):
        assert torch.equal(encode_scale(w, c), encode(w, c).scale)


@pytest.mark.parametrize("kind, bf16", [("pcm", True), ("pcm-hermes", True), ("rram", True), ("ecram", False),
                                        ("sram", False), ("ideal", False)])
def test_bfloat16_weights_only_where_programming_noise_dwarfs_the_rounding(kind, bf16):
    """bfloat16 rounds a weight by up to 2^-9 of itself: lean layers use it only where the
    device's programming noise is >= 10x that relative to the conductance (PCM 4-5 %,
    RRAM 4 %), not on exact or finely programmed devices (SRAM, ECRAM 0.05 %, ideal)."""
    from aimc.physics.devices import DEVICES

    dev = DEVICES.get(kind)()
    assert (dev.prog_noise_rel_min() >= 10 * 2.0**-9) == bf16
    if kind in ("pcm", "pcm-hermes"):  # the bound holds on a fine grid of targets
        g = torch.linspace(0.005, 1.0, 2000, dtype=torch.float64) * dev.g_max_uS
        assert float((dev.prog_noise_std_uS(g) / g).min()) >= 0.999 * dev.prog_noise_rel_min()
