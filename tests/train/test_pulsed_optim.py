"""Chopped Tiki-Taka v2 (c-TTv2) and the multi-column transfer: exact bookkeeping, noise off."""
import pytest
import torch

from aimc.physics.pulsed import PulsedDevice
from aimc.train.pulsed import PulsedArray
from aimc.train.pulsed_optim import ChoppedTikiTakaV2, TikiTakaV2

dt = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _arrays(shape=(4, 3), dw_a=0.001, dw_c=0.01):
    g = gen()
    return (PulsedArray.from_device(PulsedDevice(dw_min=dw_a), shape, g, dtype=dt),
            PulsedArray.from_device(PulsedDevice(dw_min=dw_c), shape, g, dtype=dt))


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_ctt_transfer_recovers_the_chopper_sign_and_forgets_the_buffer(mode):
    A, C = _arrays()
    ctt = ChoppedTikiTakaV2(A, C, in_chop_prob=0.0, transfer_lr=1.0, max_pulses=2, mode=mode)
    a0 = torch.tensor([[0.035, 0.0, 0.0], [-0.012, 0.0, 0.0], [0.004, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=dt)
    ctt.A.w = a0.clone()
    ctt.chop[0] = -1.0  # column 0 chopped: A holds -gradient, the read is sign-corrected
    n = ctt.transfer(gen())
    # H = -A[:, 0] = [-0.035, 0.012, -0.004, 0]; n = trunc(H / 0.01) capped at 2 -> [-2, 1, 0, 0]
    assert n[:, 0].tolist() == [-2.0, 1.0, 0.0, 0.0] and bool((n[:, 1:] == 0).all())
    assert torch.allclose(ctt.C.w[:, 0], torch.tensor([-0.02, 0.01, 0.0, 0.0], dtype=dt))
    # forget_buffer: H set to 0 where pulses were sent, kept where not
    assert torch.allclose(ctt.H[:, 0], torch.tensor([0.0, 0.0, -0.004, 0.0], dtype=dt))
    assert torch.equal(ctt.A.w, a0) and ctt.next_col == 1 and ctt.chop.tolist() == [-1.0, 1.0, 1.0]


def test_ctt_without_forget_buffer_subtracts_the_steps():
    A, C = _arrays()
    ctt = ChoppedTikiTakaV2(A, C, in_chop_prob=0.0, forget_buffer=False)
    ctt.A.w = torch.tensor([[0.035, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]], dtype=dt)
    ctt.transfer(gen())
    assert torch.allclose(ctt.H[0, 0], torch.tensor(0.005, dtype=dt)) and torch.allclose(ctt.C.w[0, 0], torch.tensor(0.03, dtype=dt))


def test_ctt_update_is_chopped_per_column():
    A, C = _arrays(shape=(2, 3), dw_a=0.01)
    ctt = ChoppedTikiTakaV2(A, C, in_chop_prob=0.0, fast_lr=0.5, transfer_every=10 ** 6)
    ctt.chop = torch.tensor([1.0, -1.0, 1.0], dtype=dt)
    ctt.step(torch.ones(1, 3, dtype=dt), torch.ones(1, 2, dtype=dt), gen(1))
    # -fast_lr * d^T (c * x): columns 0, 2 go down, column 1 up (same magnitude in expectation)
    assert bool((ctt.A.w[:, [0, 2]] < 0).all() and (ctt.A.w[:, 1] > 0).all())


def test_chopper_flips_regularly_or_with_probability():
    A, C = _arrays(shape=(2, 2))
    reg = ChoppedTikiTakaV2(A, C, in_chop_prob=0.5, in_chop_random=False)
    signs = []
    for _ in range(8):  # column 0 is read on reads 1, 3, 5, 7: flips on its 2nd and 4th read
        reg.transfer(gen())
        signs.append(reg.chop.tolist())
    assert [s[0] for s in signs[::2]] == [1.0, -1.0, -1.0, 1.0]
    A, C = _arrays(shape=(2, 2))
    always = ChoppedTikiTakaV2(A, C, in_chop_prob=1.0)
    always.transfer(gen())
    assert always.chop.tolist() == [-1.0, 1.0]
    A, C = _arrays(shape=(2, 2))
    never = ChoppedTikiTakaV2(A, C, in_chop_prob=0.0)
    for _ in range(6):
        never.transfer(gen())
    assert never.chop.tolist() == [1.0, 1.0]
    A, C = _arrays(shape=(2, 50))
    rnd = ChoppedTikiTakaV2(A, C, in_chop_prob=0.3, n_cols=50)
    flips = 0
    for _ in range(40):
        before = rnd.chop.clone()
        rnd.transfer(gen(_))
        flips += int((rnd.chop != before).sum())
    assert abs(flips / 2000 - 0.3) < 5 * (0.3 * 0.7 / 2000) ** 0.5


def test_chopper_cancels_a_constant_offset_of_A_that_ttv2_transfers():
    """A wrong reference (A - ref = 0.004 everywhere, no gradient): TTv2 integrates it into C,
    c-TTv2 with a chopper flipping every read sees +0.004, -0.004, ... and writes nothing."""
    results = {}
    for name in ("tt", "ctt"):
        A, C = _arrays(shape=(2, 1))
        kw = dict(transfer_lr=1.0)
        opt = TikiTakaV2(A, C, **kw) if name == "tt" else ChoppedTikiTakaV2(A, C, in_chop_prob=1.0, in_chop_random=False, **kw)
        opt.A.w = opt.ref + 0.004
        for _ in range(10):
            opt.transfer(gen())
        results[name] = opt.C.w.clone()
    assert torch.allclose(results["tt"], torch.full((2, 1), 0.04, dtype=dt))  # 10 reads * 0.004 -> 4 pulses
    assert bool((results["ctt"] == 0).all())


def test_multi_column_transfer_wraps_around():
    A, C = _arrays(shape=(2, 5))
    tt = TikiTakaV2(A, C, n_cols=3)
    tt.A.w = torch.full((2, 5), 0.02, dtype=dt)
    n = tt.transfer(gen())
    assert n[0].tolist() == [2.0, 2.0, 2.0, 0.0, 0.0] and tt.next_col == 3
    n = tt.transfer(gen())  # columns 3, 4, 0
    assert n[0].tolist() == [2.0, 0.0, 0.0, 2.0, 2.0] and tt.next_col == 1


def test_bad_settings_name_the_field():
    A, C = _arrays()
    for kw, field in (({"in_chop_prob": 1.5}, "in_chop_prob"), ({"n_cols": 4}, "n_cols"), ({"mode": "magic"}, "mode"),
                      ({"transfer_lr": 0.0}, "transfer_lr")):
        with pytest.raises(ValueError, match=field):
            ChoppedTikiTakaV2(A, C, **kw)
