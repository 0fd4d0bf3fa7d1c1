"""PulsedGroup: several arrays' fast pulse updates in one pass; and the tensor device and
dtype of every array, optimizer and trainer tensor (CPU always, CUDA when available)."""
import math

import pytest
import torch

from aimc.physics.pulsed import PULSED_PRESETS, PulsedDevice
from aimc.train.pulsed import PulsedArray
from aimc.train.pulsed_group import PulsedGroup
from aimc.train.pulsed_optim import ChoppedTikiTakaV2, MixedPrecision, TikiTakaV2

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def gen(seed=0, device="cpu"):
    return torch.Generator(device=device).manual_seed(seed)


@pytest.mark.parametrize("kind", ["constant_step", "soft_bounds", "linear_step", "exp_step"])
def test_group_of_one_array_is_the_array_update_draw_for_draw(kind):
    dev = {"linear_step": PULSED_PRESETS["ecram"], "exp_step": PULSED_PRESETS["reram_es"],
           "soft_bounds": PULSED_PRESETS["reram_sb"]}.get(kind, PULSED_PRESETS["gokmen_vlasov"])
    a = PulsedArray.from_device(dev, (5, 7), gen(1))
    b = PulsedArray.from_device(dev, (5, 7), gen(1))
    g = gen(2)
    x, d = torch.randn(6, 7, generator=g), torch.randn(6, 5, generator=g)
    ga, gb = gen(3), gen(3)
    group = PulsedGroup([b])
    for _ in range(3):
        a.pulse_update(x, d, 0.05, 31, ga)
        group.pulse_update([x], [d], [0.05], 31, gb)
    assert torch.equal(a.w, b.w)


def test_group_update_of_two_arrays_is_minus_lr_dT_x_in_expectation():
    """Ideal symmetric device, no noise, no probability clipped (lr/(dw_min*bl) < 1, |x|,
    |d| <= 1): each array's mean change is its own -lr d^T x (tolerance 5 standard errors
    of the mean over the trials)."""
    dt, n_trials = torch.float64, 2000
    dev = PulsedDevice(kind="constant_step", dw_min=0.001)
    g = gen(4)
    arrays = [PulsedArray.from_device(dev, (3, 4), g, dtype=dt), PulsedArray.from_device(dev, (2, 5), g, dtype=dt)]
    u = lambda *shape: 2 * torch.rand(*shape, generator=g, dtype=dt) - 1  # noqa: E731  |.| <= 1: no probability clipped
    xs, ds, lrs = [u(3, 4), u(3, 5)], [u(3, 3), u(3, 2)], [0.01, 0.02]
    group = PulsedGroup(arrays)
    dws = [torch.empty(n_trials, *a.w.shape, dtype=dt) for a in arrays]
    for t in range(n_trials):
        for a in arrays:
            a.w = torch.zeros_like(a.w)
        group.pulse_update(xs, ds, lrs, 31, g)
        for k, a in enumerate(arrays):
            dws[k][t] = a.w
    for dw, x, d, lr in zip(dws, xs, ds, lrs):
        se = dw.std(0) / math.sqrt(n_trials)
        assert bool(((dw.mean(0) + lr * d.T @ x).abs() <= 5 * se + 1e-12).all())


def test_group_rejects_mixed_or_missing_arrays():
    g = gen()
    a = PulsedArray.from_device(PULSED_PRESETS["ecram"], (2, 2), g)
    with pytest.raises(ValueError, match="at least one"):
        PulsedGroup([])
    with pytest.raises(ValueError, match="device config"):
        PulsedGroup([a, PulsedArray.from_device(PULSED_PRESETS["reram_sb"], (2, 2), g)])
    with pytest.raises(ValueError, match="device config"):
        PulsedGroup([a, PulsedArray.from_device(PULSED_PRESETS["ecram"], (2, 2), g, dtype=torch.float64)])
    with pytest.raises(ValueError, match="one x, d and lr per array"):
        PulsedGroup([a]).pulse_update([torch.ones(1, 2)] * 2, [torch.ones(1, 2)], [0.1], 31, g)


def _tensors(*objs):
    return {f"{type(o).__name__}.{k}": v for o in objs for k, v in vars(o).items() if isinstance(v, torch.Tensor)}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_arrays_and_optimizers_keep_their_tensor_device_and_dtype(device, mode):
    """Every tensor on the update path follows the generator's device and the array's dtype
    (float32 here while torch's default dtype is float64, so a missing dtype= shows)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        g = gen(0, device)
        dev = PULSED_PRESETS["reram_sb"]
        mk = lambda shape=(4, 5): PulsedArray.from_device(dev, shape, g, dtype=torch.float32)  # noqa: E731
        x = torch.rand(3, 5, generator=g, device=device, dtype=torch.float32)
        d = torch.randn(3, 4, generator=g, device=device, dtype=torch.float32)
        sgd, mp = mk(), MixedPrecision(mk(), mode=mode)
        tt = TikiTakaV2(mk(), mk(), n_cols=3, read_noise_std=0.01, mode=mode)  # 3 of 5 columns: wraps around
        ctt = ChoppedTikiTakaV2(mk(), mk(), n_cols=3, in_chop_prob=0.5, forget_buffer=False, mode=mode)
        group = PulsedGroup([mk(), mk((2, 5))])
        for _ in range(3):
            sgd.pulse_update(x, d, 0.1, 7, g, mode=mode)
            mp.step(x, d, 0.5, g)
            tt.step(x, d, g)
            ctt.step(x, d, g)
            group.pulse_update([x, x], [d, d[:, :2]], [0.1, 0.1], 7, g)
        objs = (sgd, mp, mp.array, tt, tt.A, tt.C, ctt, ctt.A, ctt.C, *group.arrays)
        for name, t in _tensors(*objs).items():
            assert t.device.type == device, name
            assert t.dtype in (torch.float32, torch.int64, torch.bool), (name, t.dtype)
            assert bool(torch.isfinite(t.float()).all()), name
    finally:
        torch.set_default_dtype(old)
