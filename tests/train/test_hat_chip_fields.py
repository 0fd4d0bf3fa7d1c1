"""Every ChipSpec field: with noise off, the HAT read is the inference read, or HAT refuses.

The fields are enumerated from the pydantic models, so a new field (or device kind)
without a decision in :data:`DECISIONS` fails :func:`test_every_chip_field_has_a_decision`.
Each decision lists values to read at (overrides of a quiet base chip: no read noise, no
output noise, every device kind with its noise parameters at zero, the layer programmed);
``REFUSED`` lists values HAT must reject with an error naming the field; ``NOT_READ``
names fields that take no part in a tile read, with the reason.
"""
import pytest
import torch
from torch import nn

import aimc
from aimc.chips import ChipSpec
from aimc.config import BaseConfig
from aimc.physics import DEVICES
from aimc.tiles import Periphery, significance
from aimc.train import hat_fused
from aimc.train.hat import HATConfig, enable_hat

#: Quiet base: 64 x 32 tiles (a 150 x 40 layer spans 3 x 2 of them), 8-bit DAC and ADC
#: with a bound the outputs exceed now and then, no noise, no wires. ADC bounds are not
#: rational multiples of the DAC step: with quantised weights (slices of 4-level cells)
#: a rational bound puts ~1/18 of the partial sums exactly on a rounding tie, which the
#: float order of two equal matmuls then decides either way.
BASE = dict(rows=64, cols=32, n_tiles=64, device={"kind": "ideal", "g_max_uS": 25.0},
            dac={"bits": 8, "noise_management": "abs_max", "bound": 1.0},
            adc={"bits": 8, "bound": 6.1, "bound_management": False, "bm_max_iter": 3},
            noise={"read_noise": False, "out_noise": 0.0},
            mapping={"weight_scaling": "per_column", "slices": 1, "slice_base": 1.0},
            ir_drop={"mode": "none", "r_wire_ohm": 0.0})

#: field path -> list of override dicts (merged into BASE) at which HAT must equal the chip.
DECISIONS: dict[str, list[dict]] = {
    "rows": [{"rows": 16}, {"rows": 256}],
    "cols": [{"cols": 8}, {"cols": 256}],
    "device": [{"device": {"kind": k}} for k in DEVICES.names()]
    + [{"device": {"kind": k}, "ir_drop": {"mode": "first_order", "r_wire_ohm": 1.0}} for k in DEVICES.names()]
    + [{"device": {"kind": "rram", "n_levels": 4}}, {"device": {"kind": "sram", "bits": 3}}],
    "dac.bits": [{"dac": {"bits": None}}, {"dac": {"bits": 4}}],
    "dac.noise_management": [{"dac": {"noise_management": "none", "bound": 2.0}}],
    "dac.bound": [{"dac": {"noise_management": "none", "bound": 0.5}}],
    "adc.bits": [{"adc": {"bits": None}}, {"adc": {"bits": 5, "bound": 6.1}}],
    "adc.bound": [{"adc": {"bound": 2.1}}, {"adc": {"bound": 50.3}}],
    "adc.bound_management": [{"adc": {"bound": 2.1, "bound_management": True}}],
    "adc.bm_max_iter": [{"adc": {"bound": 1.1, "bound_management": True, "bm_max_iter": 1}},
                        {"adc": {"bound": 1.1, "bound_management": True, "bm_max_iter": 0}}],
    "noise.read_noise": [{"noise": {"read_noise": False}}],  # noise: statistics, test_hat*.py
    "noise.out_noise": [{"noise": {"out_noise": 0.0}}],
    "mapping.weight_scaling": [{"mapping": {"weight_scaling": "per_tensor"}}],
    "mapping.slices": [{"mapping": {"slices": 3}}, {"mapping": {"slices": 2}, "cols": 8}],
    "mapping.slice_base": [{"mapping": {"slices": 4, "slice_base": 4.0}, "device": {"kind": "rram", "n_levels": 4}},
                           {"mapping": {"slices": 2, "slice_base": 8.0}}],
    "ir_drop.mode": [{"ir_drop": {"mode": "first_order", "r_wire_ohm": 2.0}}],
    "ir_drop.r_wire_ohm": [{"ir_drop": {"mode": "first_order", "r_wire_ohm": 0.15}, "rows": 256, "cols": 256},
                           {"ir_drop": {"mode": "first_order", "r_wire_ohm": 0.0}}],
}
#: field path -> override dicts that HAT must refuse with an error naming the field.
REFUSED: dict[str, list[dict]] = {
    "ir_drop.mode": [{"ir_drop": {"mode": "exact", "r_wire_ohm": 1.0}}],
}
#: field path -> why it takes no part in a read.
NOT_READ = {
    "name": "label", "description": "text", "sources": "citations",
    "n_tiles": "tiles on the chip: the compiler's and cost model's budget, not a read",
    "cost": "energy/latency/area parameters of the cost model",
    "digital": "the chip's digital units: what running layers and ops digitally costs (aimc.cost.soc)",
    "pulsed": "the devices' response to update pulses, for on-chip training (aimc.train.onchip)",
    "tiers": "3D stacking: how many arrays a tile holds and the LLM event simulator's timing (aimc.workloads.llm3d)",
}


def _leaves(model: type[BaseConfig], prefix: str = "") -> list[str]:
    out = []
    for name, f in model.model_fields.items():
        ann = f.annotation
        sub = ann if isinstance(ann, type) and issubclass(ann, BaseConfig) and name != "cost" else None
        if sub is not None and prefix + name != "device":
            out += _leaves(sub, prefix + name + ".")
        else:
            out.append(prefix + name)
    return out


def test_every_chip_field_has_a_decision():
    fields = set(_leaves(ChipSpec))
    decided = set(DECISIONS) | set(REFUSED) | set(NOT_READ)
    assert fields - decided == set(), f"ChipSpec fields without a HAT decision: {sorted(fields - decided)}"
    assert decided - fields == set(), f"decisions for fields that no longer exist: {sorted(decided - fields)}"


#: Device fields that draw randomness (programming, drift, retention, read noise), zeroed
#: here; HAT's noise statistics are tested in test_hat.py and test_hat_fused.py.
NOISE_FIELDS = ("prog_noise_scale", "drift_scale", "read_noise_scale", "sigma_d2d", "sigma_c2c", "p_stuck_on",
                "p_stuck_off", "sigma_ret_uS", "prog_noise_levels", "read_noise_rel")


def _chip(over: dict) -> ChipSpec:
    d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    for k, v in over.items():
        if isinstance(v, dict) and k != "device":
            d[k].update(v)
        else:
            d[k] = v
    fields = DEVICES.get(d["device"]["kind"]).model_fields
    d["device"] = {**{f: 0.0 for f in NOISE_FIELDS if f in fields}, **d["device"]}
    return ChipSpec.model_validate(d)


def test_quiet_devices_program_deterministically():
    for kind in DEVICES.names():
        chip = _chip({"device": {"kind": kind}})
        g = torch.rand(3, 5) * chip.device.g_max_uS
        a = chip.device.program(g, torch.Generator().manual_seed(0)).g_uS
        b = chip.device.program(g, torch.Generator().manual_seed(1)).g_uS
        assert torch.equal(a, b), kind


def _cases(table):
    return [pytest.param(field, over, id=f"{field}-{i}") for field, overs in table.items() for i, over in enumerate(overs)]


_QUIET = HATConfig(noise_scale=0.0, t_eval_s=0.0, t_eval_max_s=None)


def _reads(layer, x, fused: bool, monkeypatch):
    with monkeypatch.context() as m:
        if not fused:
            m.setattr(hat_fused, "usable", lambda *a: False)
        with torch.no_grad():
            return layer.eval()(x), layer.train()(x)


def _out_lsb(chip, layer, x_scale: float) -> float:
    """One ADC step of the largest slice at the output, in output units."""
    per = Periphery.of(chip)
    lsb = per.adc_lsb or 0.0
    return lsb * max(significance(chip)) * float(layer.weight.detach().abs().max()) * x_scale


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "reference"])
@pytest.mark.parametrize("field,over", _cases(DECISIONS))
def test_linear_hat_read_equals_the_inference_read(field, over, fused, monkeypatch):
    chip = _chip(over)
    torch.manual_seed(0)
    layer = aimc.convert(nn.Linear(150, 40), chip)
    aimc.program(layer, seed=0)
    enable_hat(layer, _QUIET, seed=0)
    x = torch.randn(64, 150)
    y_chip, y_hat = _reads(layer, x, fused, monkeypatch)
    # ADC codes may flip where a partial sum sits on a rounding boundary (float order of
    # the two matmuls); under bound management a flip may also pick another re-read scale
    tol = 3 * _out_lsb(chip, layer, float(x.abs().max())) * 2 ** Periphery.of(chip).bm_max_iter
    err = (y_hat - y_chip).abs()
    assert float(err.max()) <= 1e-4 * float(y_chip.abs().max()) + tol, field
    assert float(err.mean()) <= 1e-3 * float(y_chip.abs().mean()), field


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "reference"])
@pytest.mark.parametrize("field,over", _cases(DECISIONS))
def test_conv_hat_read_with_static_range_equals_the_inference_read(field, over, fused, monkeypatch):
    chip = _chip(over)
    torch.manual_seed(1)
    layer = aimc.convert(nn.Conv2d(6, 12, 5, padding=2), chip)  # 150 inputs per patch
    aimc.program(layer, seed=0)
    enable_hat(layer, _QUIET.replace(input_range="learned", input_range_decay=0.0), seed=0)
    layer.input_range.data.fill_(2.5)
    x = torch.randn(2, 6, 7, 7)
    y_chip, y_hat = _reads(layer, x, fused, monkeypatch)
    tol = 3 * _out_lsb(chip, layer, 2.5) * 2 ** Periphery.of(chip).bm_max_iter
    err = (y_hat - y_chip).abs()
    assert float(err.max()) <= 1e-4 * float(y_chip.abs().max()) + tol, field
    assert float(err.mean()) <= 1e-3 * float(y_chip.abs().mean()), field


@pytest.mark.parametrize("field,over", _cases(REFUSED))
def test_hat_refuses_what_it_cannot_read_naming_the_field(field, over):
    layer = aimc.convert(nn.Linear(20, 4), _chip(over))
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        enable_hat(layer, _QUIET, seed=0)


@pytest.mark.parametrize("make,shape", [(lambda: nn.Linear(150, 40), (8, 150)),
                                        (lambda: nn.Conv2d(6, 12, 5, padding=2), (2, 6, 7, 7))],
                         ids=["linear", "conv2d"])
def test_fused_ir_drop_gradients_equal_the_reference(make, shape, monkeypatch):
    """Through strong IR drop (2 ohm on 64 x 32 tiles: a ~10 % effect) the fused kernels'
    additive IR-drop correction has the reference read's outputs and gradients. (No DAC:
    with per-patch abs-max scaling both reads model a convolution's DAC as random noise.)"""
    import copy

    chip = _chip({"ir_drop": {"mode": "first_order", "r_wire_ohm": 2.0}, "device": {"kind": "pcm-hermes"},
                  "dac": {"bits": None}})
    torch.manual_seed(2)
    model = aimc.convert(make(), chip)
    enable_hat(model, HATConfig(noise_scale=0.0, t_eval_max_s=None), seed=0)
    x = torch.randn(*shape)
    res = []
    for fused in (True, False):
        with monkeypatch.context() as m:
            if not fused:
                m.setattr(hat_fused, "usable", lambda *a: False)
            net = copy.deepcopy(model).train()
            out = net(x)
            (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
            res.append((out.detach(), net.weight.grad))
    (out_f, gw_f), (out_r, gw_r) = res
    plain = aimc.convert(copy.deepcopy(make()), chip.replace(ir_drop=chip.ir_drop.replace(mode="none")))
    plain.load_state_dict(model.state_dict())
    enable_hat(plain, HATConfig(noise_scale=0.0, t_eval_max_s=None), seed=0)
    with torch.no_grad():
        assert float((plain.train()(x) - out_r).norm() / out_r.norm()) > 0.01  # the IR drop is visible
    torch.testing.assert_close(out_f, out_r, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gw_f, gw_r, rtol=1e-4, atol=1e-6)
