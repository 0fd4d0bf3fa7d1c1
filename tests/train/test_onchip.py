"""On-chip MLP training: configuration errors, the exported model, learning on a tiny problem,
and (slow) the README table's claims on digits."""
import pytest
import torch
import yaml

import aimc
from aimc.config import ConfigError
from aimc.physics import PULSED_PRESETS
from aimc.train.onchip import METHODS, AnalogMLP, OnChipConfig, device_for, fit_digital, fit_onchip
from aimc.workloads.data import load_dataset


@pytest.fixture(autouse=True)
def _one_thread():
    """Tensors this small gain nothing from threads; on a busy machine OpenMP spin-waits cost 10x."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _blobs(n=240, seed=0):
    """Four well separated Gaussian classes in 8 dimensions."""
    g = torch.Generator().manual_seed(seed)
    centers = 2.0 * torch.randn(4, 8, generator=g)
    y = torch.arange(n) % 4
    return (centers[y] + 0.5 * torch.randn(n, 8, generator=g)).clamp(min=0) / 3, y


def test_device_comes_from_the_chip_spec():
    assert device_for("ecram") == aimc.chips.load("ecram").pulsed == PULSED_PRESETS["ecram"]
    assert device_for("rram-1t1r") == PULSED_PRESETS["reram_sb"]
    assert device_for(aimc.chips.load("ecram")) == PULSED_PRESETS["ecram"]
    with pytest.raises(ConfigError, match=r"chip 'pcm-hermes'.*'pulsed'.*ecram, rram-1t1r"):
        device_for("pcm-hermes")
    with pytest.raises(ConfigError, match="unknown chip 'nope'"):
        device_for("nope")


def _chip_yaml(tmp_path, base, name, **pulsed):
    d = aimc.chips.load(base).to_dict()
    d["name"] = name
    if pulsed:
        d["pulsed"] = pulsed
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def test_fit_onchip_on_a_custom_yaml_chip(tmp_path):
    """A YAML chip with ecram's pulsed section trains to the same numbers as the preset (same
    device parameters, same seed); another section changes them; the chip's name is kept."""
    x, y = _blobs(64)
    ref = fit_onchip(x, y, "ecram", "tiki-taka-v2", hidden=8, epochs=1, seed=3)
    same = fit_onchip(x, y, _chip_yaml(tmp_path, "ecram", "my-ecram"), "tiki-taka-v2", hidden=8, epochs=1, seed=3)
    assert same.config["chip"] == "my-ecram" and same.config["device"] == ref.config["device"]
    assert torch.equal(same.model.logits(x), ref.model.logits(x))
    sb = PULSED_PRESETS["reram_sb"].to_dict()
    sb.pop("_version")
    other = fit_onchip(x, y, str(_chip_yaml(tmp_path, "pcm", "pcm-sb", **sb)), "tiki-taka-v2", hidden=8, epochs=1,
                       seed=3)
    assert other.config["device"]["kind"] == "soft_bounds" and other.model.device == PULSED_PRESETS["reram_sb"]
    assert not torch.equal(other.model.logits(x), ref.model.logits(x))
    spec = aimc.chips.load("rram-1t1r").replace(pulsed=PULSED_PRESETS["ecram"])  # a ChipSpec object
    assert torch.equal(fit_onchip(x, y, spec, "tiki-taka-v2", hidden=8, epochs=1, seed=3).model.logits(x),
                       ref.model.logits(x))


def test_chip_without_pulsed_section_is_refused(tmp_path):
    x, y = _blobs(16)
    with pytest.raises(ConfigError, match=r"chip 'plain-pcm' cannot be trained on-chip.*'pulsed' section"):
        fit_onchip(x, y, _chip_yaml(tmp_path, "pcm", "plain-pcm"), "analog-sgd", epochs=1)
    with pytest.raises(ConfigError, match=r"chip 'sram-dcim'.*'pulsed'"):
        AnalogMLP(8, 4, "sram-dcim", OnChipConfig(hidden=(4,)))


@pytest.mark.parametrize("given", ["x_test", "y_test"])
def test_a_test_set_needs_both_inputs_and_labels(given):
    x, y = torch.rand(8, 4), torch.arange(8) % 2
    with pytest.raises(ValueError, match="x_test and y_test: give both or neither"):
        fit_onchip(x, y, chip="ecram", method="analog-sgd", hidden=4, epochs=1, **{given: x if given == "x_test" else y})


def test_analog_mlp_takes_a_chip_or_its_pulsed_device():
    a = AnalogMLP(8, 4, "rram-1t1r", OnChipConfig(hidden=(6,)), seed=0)
    b = AnalogMLP(8, 4, PULSED_PRESETS["reram_sb"], OnChipConfig(hidden=(6,)), seed=0)
    x = torch.rand(5, 8, generator=torch.Generator().manual_seed(1))
    assert a.device == b.device and torch.equal(a.logits(x), b.logits(x))


@pytest.mark.parametrize("bad, field", [({"method": "magic"}, "method"), ({"batch_size": 0}, "batch_size"),
                                        ({"lr": -1.0}, "lr"), ({"in_chop_prob": 2.0}, "in_chop_prob"),
                                        ({"mode": "slow"}, "mode"), ({"nonsense": 1}, "nonsense")])
def test_bad_config_names_the_field(bad, field):
    with pytest.raises(ConfigError, match=field):
        OnChipConfig.from_dict(bad)
    x, y = _blobs(16)
    with pytest.raises(ValueError, match=field):
        fit_onchip(x, y, "ecram", epochs=1, **({"method": bad["method"]} if "method" in bad else {}),
                   **{k: v for k, v in bad.items() if k != "method"})


@pytest.mark.parametrize("method", METHODS)
def test_small_onchip_run_learns(method):
    x, y = _blobs()
    res = fit_onchip(x[:160], y[:160], chip="rram-1t1r", method=method, hidden=16, epochs=10, lr=0.1, seed=0,
                     x_test=x[160:], y_test=y[160:])
    assert len(res.history) == 10 and {"loss", "train_accuracy", "test_accuracy", "seconds"} <= set(res.history[0])
    assert res.test_accuracy > 0.6  # chance is 0.25
    assert res.history[-1]["loss"] < res.history[0]["loss"]


def test_to_torch_reproduces_the_analog_logits_and_is_deterministic():
    x, y = _blobs(64)
    a = fit_onchip(x, y, "ecram", "tiki-taka-v2", hidden=8, epochs=1, seed=3)
    b = fit_onchip(x, y, "ecram", "tiki-taka-v2", hidden=8, epochs=1, seed=3)
    net = a.model.to_torch()
    with torch.no_grad():
        assert torch.allclose(net(x), a.model.logits(x), atol=1e-5)
    assert torch.equal(a.model.logits(x), b.model.logits(x))
    assert a.config["device"]["kind"] == "linear_step" and a.config["chip"] == "ecram"


def test_exact_mode_trains_too():
    x, y = _blobs(64)
    res = fit_onchip(x, y, "ecram", "analog-sgd", hidden=8, epochs=1, mode="exact")
    assert res.history[0]["train_accuracy"] > 0.25


def test_weights_start_from_programmed_init_within_bounds():
    net = AnalogMLP(8, 4, "rram-1t1r", OnChipConfig(hidden=(6,)), seed=0)
    for layer in net.layers:
        w = layer.array.w
        assert bool((w <= layer.array.w_max_dev).all() and (w >= layer.array.w_min_dev).all())
        assert 0 < float(layer.weight.abs().max()) <= layer.weight.shape[1] ** -0.5 + 1e-6


def test_fit_digital_is_the_same_architecture():
    x, y = _blobs(64)
    res = fit_digital(x, y, hidden=8, epochs=2, lr=0.1)
    sizes = [tuple(p.shape) for p in res.model.parameters()]
    assert sizes == [(8, 8), (8,), (4, 8), (4,)] and len(res.history) == 2
    with pytest.raises(ValueError, match="optimizer"):
        fit_digital(x, y, optimizer="rmsprop")


@pytest.mark.slow
def test_readme_table_claims_on_digits():
    """Analog SGD on the asymmetric RRAM device loses accuracy, TTv2 recovers to within 2
    points of digital SGD on both devices (3 seeds, 30 epochs, settings of the README)."""
    x, y, xt, yt = load_dataset("digits", seed=0)

    def mean_acc(fn):
        return sum(fn(s).history[-1]["test_accuracy"] for s in range(3)) / 3

    dig = mean_acc(lambda s: fit_digital(x, y, 64, 30, lr=0.1, seed=s, x_test=xt, y_test=yt))
    sgd = mean_acc(lambda s: fit_onchip(x, y, "rram-1t1r", "analog-sgd", 64, 30, lr=0.05, seed=s, x_test=xt, y_test=yt))
    assert sgd < dig - 0.05
    for chip in ("rram-1t1r", "ecram"):
        tt = mean_acc(lambda s: fit_onchip(x, y, chip, "tiki-taka-v2", 64, 30, lr=0.1, seed=s, x_test=xt, y_test=yt))
        assert tt > dig - 0.02, (chip, tt, dig)
        assert tt > sgd


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
@pytest.mark.parametrize("method", METHODS)
def test_training_keeps_every_tensor_on_the_model_device_and_owns_its_state(method, device):
    """AnalogMLP(torch_device=...) trains with its tensors where asked (CUDA when available);
    after training (which runs under inference mode) no state is an inference tensor, so it
    can be changed in place."""
    x, y = _blobs(64)
    res = fit_onchip(x, y, chip="ecram", method=method, hidden=6, epochs=1, seed=0, torch_device=device,
                     x_test=x, y_test=y, batch_size=8, transfer_every=1, n_cols=3)
    net = res.model
    assert net.train_step(x[:8].to(device), y[:8].to(device), 0.1) > 0
    for layer in net.layers:
        for obj in (layer, layer.opt, layer.array, getattr(layer.opt, "A", None)):
            for name, t in (vars(obj).items() if obj is not None else ()):
                if isinstance(t, torch.Tensor):
                    assert t.device.type == device and not t.is_inference(), (method, name)
        layer.array.w.add_(0.0)  # in place, outside inference mode
    assert net.to_torch()(x[:2]).shape == (2, 4)  # the exported model is a CPU module
