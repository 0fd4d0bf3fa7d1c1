"""Tests of aimc.workloads.data: digits split, IDX parser, Fashion-MNIST loader, dispatch."""
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from aimc.workloads.data import FASHION_MNIST_ROOT, load_dataset, load_digits, load_fashion_mnist, read_idx


def _write_idx(path: Path, arr: np.ndarray, magic: bytes | None = None, compress: bool = True) -> Path:
    header = magic if magic is not None else bytes([0, 0, 0x08, arr.ndim])
    raw = header + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)
    return path


def _fake_fashion(root: Path, n_train: int = 6, n_test: int = 4) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(root / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(root / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)


def test_digits_shapes_range_and_dtypes():
    x_tr, y_tr, x_te, y_te = load_digits()
    assert x_tr.shape[1:] == (1, 8, 8) and x_te.shape[1:] == (1, 8, 8)
    assert len(x_tr) + len(x_te) == 1797 and len(x_te) == 360
    assert x_tr.dtype == torch.float32 and y_tr.dtype == torch.int64
    assert float(x_tr.min()) >= 0.0 and float(x_tr.max()) == 1.0
    assert set(y_te.tolist()) == set(range(10))


def test_digits_split_is_seeded_and_stratified():
    a, b = load_digits(seed=3), load_digits(seed=3)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    c = load_digits(seed=4)
    assert not torch.equal(a[3], c[3])
    counts_tr = torch.bincount(a[1], minlength=10).float()
    counts_te = torch.bincount(a[3], minlength=10).float()
    frac = counts_te / (counts_tr + counts_te)
    assert torch.all((frac - 0.2).abs() < 0.02)  # stratified: every class ~20 % held out


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1])
def test_digits_rejects_bad_fraction(bad):
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits(test_fraction=bad)


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trip(tmp_path, compress):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    p = _write_idx(tmp_path / ("a.gz" if compress else "a"), arr, compress=compress)
    out = read_idx(p)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, arr)


def test_read_idx_wrong_magic_is_a_clear_error(tmp_path):
    p = _write_idx(tmp_path / "bad.gz", np.zeros(3), magic=bytes([0x1F, 0x8B, 0x08, 1]))
    with pytest.raises(ValueError, match=r"bad\.gz is not an IDX file: bad magic"):
        read_idx(p)


def test_read_idx_unsupported_type_and_truncation(tmp_path):
    p = _write_idx(tmp_path / "f.gz", np.zeros(3), magic=bytes([0, 0, 0x0D, 1]))
    with pytest.raises(ValueError, match="0x0d is not supported"):
        read_idx(p)
    raw = bytes([0, 0, 8, 1]) + struct.pack(">I", 5) + bytes(3)  # declares 5 values, holds 3
    (tmp_path / "short").write_bytes(raw)
    with pytest.raises(ValueError, match=r"declares shape \(5,\).*holds 3"):
        read_idx(tmp_path / "short")


def test_fashion_loader_on_tiny_fake_set(tmp_path):
    _fake_fashion(tmp_path)
    x_tr, y_tr, x_te, y_te = load_fashion_mnist(tmp_path)
    assert x_tr.shape == (6, 1, 28, 28) and x_te.shape == (4, 1, 28, 28)
    assert x_tr.dtype == torch.float32 and 0.0 <= float(x_tr.min()) and float(x_tr.max()) <= 1.0
    assert y_te.tolist() == [0, 1, 2, 3] and y_tr.dtype == torch.int64
    x2 = load_dataset("fashion-mnist", root=tmp_path)[0]
    assert torch.equal(x2, x_tr)


def test_fashion_missing_file_names_path_and_package(tmp_path):
    _fake_fashion(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError) as e:
        load_fashion_mnist(tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "t10k-labels-idx1-ubyte.gz") in msg
    assert "apt-get install dataset-fashion-mnist" in msg


def test_fashion_mismatched_images_and_labels(tmp_path):
    _fake_fashion(tmp_path)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(5))
    with pytest.raises(ValueError, match="do not match"):
        load_fashion_mnist(tmp_path)


def test_load_dataset_dispatch_and_unknown_name():
    assert load_dataset("digits")[0].shape[1:] == (1, 8, 8)
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar'.*digits, fashion-mnist"):
        load_dataset("cifar")


@pytest.mark.slow
@pytest.mark.skipif(not Path(FASHION_MNIST_ROOT).exists(), reason="apt-get install dataset-fashion-mnist")
def test_real_fashion_mnist():
    x_tr, y_tr, x_te, y_te = load_fashion_mnist()
    assert x_tr.shape == (60000, 1, 28, 28) and x_te.shape == (10000, 1, 28, 28)
    assert torch.bincount(y_te).tolist() == [1000] * 10
