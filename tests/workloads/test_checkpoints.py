"""Models rebuilt from checkpoint headers: what each header builds, and malformed headers
refused with a ValueError naming the file (Hypothesis)."""
import json

import pytest
import torch
from hypothesis import given, seed, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

import aimc
from aimc.nn import read_checkpoint, save_state
from aimc.workloads.checkpoints import mlp_spec, model_spec, rebuild
from aimc.workloads.models import digits_cnn


def test_rebuild_weights_and_a_programmed_chip(tmp_path):
    cnn = digits_cnn(seed=3)
    w = save_state(cnn, tmp_path / "w.safetensors", model_spec=model_spec("digits"), run={"dataset": "digits"})
    m = rebuild(read_checkpoint(w), chip="pcm")
    assert torch.equal(m.digital[0].weight, cnn[0].weight) and m.analog[0].chip.name == "pcm"
    assert not m.analog[0].is_programmed
    analog = aimc.convert(cnn, "pcm")
    aimc.program(analog, seed=1)
    p = save_state(analog, tmp_path / "p.safetensors", model_spec=model_spec("digits"), run={"dataset": "digits"})
    m = rebuild(read_checkpoint(p))
    assert torch.equal(m.analog[3].g_uS, analog[3].g_uS) and torch.equal(m.digital[3].weight, cnn[3].weight)
    with pytest.raises(ValueError, match="programmed on 'pcm', not 'ecram'"):
        rebuild(read_checkpoint(p), chip="ecram")


def test_mlp_spec_names_its_sizes():
    from aimc.train.onchip import digital_mlp

    assert mlp_spec(digital_mlp(64, 10, (32, 16))) == {"name": "mlp", "n_in": 64, "hidden": [32, 16], "n_out": 10}


@pytest.fixture(scope="module")
def states(tmp_path_factory):
    cnn = digits_cnn(seed=0)
    analog = aimc.convert(cnn, "pcm")
    aimc.program(analog, seed=0)
    return ({k: v.contiguous() for k, v in cnn.state_dict().items()},
            {k: v.contiguous() for k, v in analog.state_dict().items()},
            analog[0].chip.to_dict(), tmp_path_factory.mktemp("fuzz") / "h.safetensors")


_ANY = st.none() | st.booleans() | st.integers(-3, 70) | st.text(max_size=6) | st.lists(st.integers(0, 9), max_size=3)


@seed(7)
@settings(max_examples=200, deadline=None)
@given(programmed=st.booleans(), name=st.sampled_from(["digits-cnn", "fashion-cnn", "mlp", "resnet", None]),
       extra=st.dictionaries(st.sampled_from(["adapter_rank", "n_in", "hidden", "n_out"]), _ANY, max_size=3),
       dataset=st.sampled_from(["digits", "fashion-mnist", "cifar", None, 3]),
       chips=st.sampled_from(["same", "none", "broken", "mixed"]))
def test_malformed_headers_are_refused_by_rebuild(states, programmed, name, extra, dataset, chips):
    digital, analog, chip, path = states
    state = analog if programmed else digital
    layers = ("0", "3", "7")
    chip_map = {"same": {n: chip for n in layers}, "none": {}, "broken": {n: {"rows": -1} for n in layers},
                "mixed": {**{n: chip for n in layers}, "7": {**chip, "name": "other"}}}[chips]
    header = {"_version": 1, "kind": "programmed" if programmed else "weights", "chips": chip_map,
              "model": None if name is None else {"name": name, **extra}, "run": {"dataset": dataset}}
    save_file(state, str(path), metadata={"aimc": json.dumps(header)})
    try:
        m = rebuild(read_checkpoint(path))
    except ValueError as e:
        assert str(path) in str(e) and "\n" not in str(e), str(e)
        return
    assert isinstance(m.digital, torch.nn.Module)


def test_previous_version_mlp_checkpoint_rebuilds(tmp_path):
    """An on-chip MLP as `aimc train` wrote it before the one format: sizes from its weights."""
    from aimc.train.onchip import digital_mlp

    mlp = digital_mlp(64, 10, (12,), seed=4)
    path = tmp_path / "old-mlp.safetensors"
    save_file({k: v.contiguous() for k, v in mlp.state_dict().items()}, str(path), metadata={
        "aimc_checkpoint": json.dumps({"dataset": "digits", "method": "tiki-taka-v2", "model": "mlp"})})
    m = rebuild(read_checkpoint(path), chip="ecram")
    assert torch.equal(m.digital[3].weight, mlp[3].weight) and m.analog[1].chip.name == "ecram"
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(m.digital(x), mlp(x))
