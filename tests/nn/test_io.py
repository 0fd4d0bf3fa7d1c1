"""The one checkpoint format: header, kinds, files of the previous version, bad files."""
import json

import pytest
import torch
from hypothesis import given, seed, settings
from hypothesis import strategies as st
from safetensors.torch import save_file
from torch import nn

import aimc
from aimc.nn import load_state, read_checkpoint, save_state
from aimc.nn.io import FORMAT_VERSION


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))


def _programmed():
    a = aimc.convert(_net(), "pcm")
    aimc.program(a, seed=2)
    aimc.drift(a, 3600.0)
    aimc.compensate(a)
    return a


def _header(path):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["aimc"])


def test_programmed_checkpoint_header_and_round_trip(tmp_path):
    a = _programmed()
    path = save_state(a, tmp_path / "c.safetensors", model_spec={"name": "toy"}, run={"seed": 2})
    h = _header(path)
    assert h["_version"] == FORMAT_VERSION and h["kind"] == "programmed" and h["model"] == {"name": "toy"}
    assert h["run"] == {"seed": 2} and h["chips"] == {"0": a[0].chip.to_dict(), "2": a[2].chip.to_dict()}
    b, c = aimc.convert(_net(), "pcm"), aimc.convert(_net(), "pcm")
    ck = load_state(b, path)
    load_state(c, path)
    assert ck.kind == "programmed" and ck.chip() == a[0].chip
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    x = torch.rand(4, 6)
    assert torch.equal(b(x), c(x))  # same chip, same read-noise stream from the same saved seed


def test_weights_checkpoint_leaves_the_chip_out_and_unprograms_on_load(tmp_path):
    a = _programmed()
    path = save_state(a, tmp_path / "w.safetensors", kind="weights")
    ck = read_checkpoint(path)
    assert ck.kind == "weights" and sorted(ck.state) == sorted(
        f"{i}.{k}" for i in (0, 2) for k in ("weight", "bias", "out_gain", "input_range"))
    other = aimc.convert(_net(), "ecram")  # trained-for chip differs: allowed for weights
    aimc.program(other, seed=5)
    load_state(other, ck)
    assert not any(m.is_programmed for _, m in aimc.nn.analog_layers(other))
    assert torch.equal(other[0].weight, a[0].weight)
    digital = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    load_state(digital, path)  # analog-only parts unused
    assert torch.equal(digital[2].bias, a[2].bias)


def test_programmed_checkpoint_refuses_another_chip_and_another_model(tmp_path):
    path = save_state(_programmed(), tmp_path / "c.safetensors")
    with pytest.raises(ValueError, match="programmed on chip 'pcm'.*'ecram'"):
        load_state(aimc.convert(_net(), "ecram"), path)
    with pytest.raises(ValueError, match=r"c.safetensors does not fit the model: it has 2 the model lacks "
                                         r"\(2.bias, 2.weight\)"):
        load_state(aimc.convert(nn.Sequential(nn.Linear(6, 3)), "pcm"), path)
    with pytest.raises(ValueError, match="size mismatch"):
        load_state(aimc.convert(nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3)), "pcm"), path)


def test_files_of_the_previous_version_load(tmp_path):
    """Version 0: ``aimc_chips`` (save_state) and ``aimc_checkpoint`` (aimc train) metadata."""
    a = _programmed()
    old_chip = tmp_path / "old-chip.safetensors"
    save_file({k: v.contiguous() for k, v in a.state_dict().items()}, str(old_chip),
              metadata={"aimc_chips": json.dumps({n: m.chip.to_dict() for n, m in aimc.nn.analog_layers(a)})})
    b = aimc.convert(_net(), "pcm")
    ck = load_state(b, old_chip)
    assert ck.version == 0 and ck.kind == "programmed" and torch.equal(b[0].g_uS, a[0].g_uS)
    old_train = tmp_path / "old-train.safetensors"
    weights = {k: v.contiguous() for k, v in _net().state_dict().items()}
    save_file(weights, str(old_train), metadata={"aimc_checkpoint": json.dumps({"dataset": "toy", "method": "hat"})})
    ck = read_checkpoint(old_train)
    assert (ck.version, ck.kind, ck.run["method"], ck.model) == (0, "weights", "hat", None)
    digital = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    load_state(digital, ck)
    assert torch.equal(digital[0].weight, weights["0.weight"])


def _valid_file(tmp_path):
    return save_state(_programmed(), tmp_path / "good.safetensors")


def _rewrite(path, out, tensors=None, header=None, metadata=None):
    ck = read_checkpoint(path)
    h = _header(path) if header is None else header
    save_file(tensors or ck.state, str(out), metadata=metadata if metadata is not None else {"aimc": json.dumps(h)})
    return out


@pytest.mark.parametrize("case, reason", [
    ("empty", "is empty"), ("truncated", "truncated or corrupt"), ("half", "truncated or corrupt"),
    ("garbage", "truncated or corrupt"), ("directory", "is a directory"), ("nan", "tensor '0.weight' holds NaN"),
    ("inf", "tensor '2.bias' holds NaN or Inf"), ("foreign", "not an aimc checkpoint"),
    ("newer", "newer aimc"), ("kind", "header field 'kind'"), ("json", "corrupt aimc header"),
    ("no chip state", "lacks the chip state"),
])
def test_bad_files_raise_one_clear_value_error(tmp_path, case, reason):
    good = _valid_file(tmp_path)
    raw = good.read_bytes()
    bad = tmp_path / "bad.safetensors"
    state = read_checkpoint(good).state
    if case == "empty":
        bad.write_bytes(b"")
    elif case == "truncated":
        bad.write_bytes(raw[:-7])
    elif case == "half":
        bad.write_bytes(raw[: len(raw) // 2])
    elif case == "garbage":
        bad.write_bytes(bytes(range(256)) * 3)
    elif case == "directory":
        bad.mkdir()
    elif case in ("nan", "inf"):
        key = "0.weight" if case == "nan" else "2.bias"
        t = state[key].clone()
        t.view(-1)[0] = float("nan") if case == "nan" else float("inf")
        _rewrite(good, bad, tensors={**state, key: t})
    elif case == "foreign":
        _rewrite(good, bad, metadata={"format": "pt"})
    elif case == "newer":
        _rewrite(good, bad, header={**_header(good), "_version": FORMAT_VERSION + 1})
    elif case == "kind":
        _rewrite(good, bad, header={**_header(good), "kind": "chip"})
    elif case == "json":
        _rewrite(good, bad, metadata={"aimc": "{not json"})
    elif case == "no chip state":
        _rewrite(good, bad, tensors={k: v for k, v in state.items() if not k.endswith("read_seed")})
    with pytest.raises(ValueError) as err:
        read_checkpoint(bad)
    msg = str(err.value)
    assert str(bad) in msg and reason in msg and "\n" not in msg
    with pytest.raises(ValueError, match=reason):
        load_state(aimc.convert(_net(), "pcm"), bad)
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        read_checkpoint(tmp_path / "missing.safetensors")


@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    path = _valid_file(tmp_path_factory.mktemp("good"))
    return path, path.read_bytes(), read_checkpoint(path).state


@seed(20261130)
@settings(max_examples=1000, deadline=None)
@given(cut=st.integers(0, 10_000), flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)),
                                                  max_size=4),
       header=st.one_of(st.none(), st.recursive(
           st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
           lambda c: st.lists(c, max_size=3) | st.dictionaries(
               st.sampled_from(["_version", "kind", "chips", "model", "run", "0", "name"]), c, max_size=5),
           max_leaves=12)))
def test_malformed_checkpoints_are_refused_with_a_value_error(good_file, cut, flips, header):
    """Hypothesis: truncated, bit-flipped files and random headers: a ValueError naming the
    file, or a file that reads back whole (a flip in padding or in a tensor's value)."""
    good, raw, state = good_file
    bad = good.with_name("bad.safetensors")
    if header is not None:
        save_file(state, str(bad), metadata={"aimc": json.dumps(header)})
    else:
        raw = bytearray(raw)
        for pos, byte in flips:
            raw[pos % len(raw)] = byte
        bad.write_bytes(bytes(raw[: cut % (len(raw) + 1)]))
    try:
        ck = read_checkpoint(bad)
    except ValueError as e:
        assert str(bad) in str(e) and "\n" not in str(e)
        return
    assert ck.kind in ("weights", "programmed") and all(torch.isfinite(v).all() for v in ck.state.values()
                                                        if v.is_floating_point())


def test_save_state_refuses_what_it_could_not_read_back(tmp_path):
    a = _programmed()
    with torch.no_grad():
        a[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="tensor '0.weight' holds NaN"):
        save_state(a, tmp_path / "nan.safetensors")
    assert not list(tmp_path.iterdir())  # nothing half-written
    with pytest.raises(ValueError, match="kind='programmed' needs"):
        save_state(_net(), tmp_path / "x.safetensors", kind="programmed")
    with pytest.raises(ValueError, match="JSON-able"):
        save_state(_net(), tmp_path / "x.safetensors", run={"t": float("nan")})


def test_save_state_paths_follow_the_output_policy(tmp_path):
    net = _net()
    path = save_state(net, tmp_path / "new" / "dir" / "m.safetensors")  # directories created
    assert path.is_file()
    with pytest.raises(FileExistsError, match="m.safetensors exists"):
        save_state(net, path)
    assert save_state(net, path, if_exists="number").name == "m-1.safetensors"
    assert save_state(net, path, if_exists="overwrite") == path
    with pytest.raises(ValueError, match="is a directory"):
        save_state(net, tmp_path / "new")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        save_state(net, path / "inside.safetensors")


def test_tied_weights_save_and_load(tmp_path):
    lin = nn.Linear(4, 4)
    tied = nn.Sequential(lin, nn.ReLU(), lin)  # one module under two names: shared tensors
    path = save_state(tied, tmp_path / "tied.safetensors")
    twin = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4))
    load_state(twin, path)
    assert torch.equal(twin[0].weight, lin.weight) and torch.equal(twin[2].weight, lin.weight)
