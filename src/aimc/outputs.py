"""Where results are written: one policy for every file aimc writes.

A user re-runs commands, so no output may destroy an earlier result, and no rerun may
fail because the first run left its result behind:

* an **explicit** path that exists is refused (``if_exists="error"``) unless the caller
  asks to overwrite it (``"overwrite"``: ``--force`` on the command line);
* a **default** path that exists becomes the first free numbered name
  (``if_exists="number"``: ``aimc-demo.png``, ``aimc-demo-1.png``, ``aimc-demo-2.png``, ...),
  which the caller reports to the user;
* missing parent directories are created; a path that is a directory, or whose parent is
  a file, is refused with a message naming it.

The command line (``aimc demo --out``, ``aimc train --out``, ``aimc estimate --plot``)
and the library (:func:`aimc.nn.save_state`) all go through :func:`claim_output`.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> first = claim_output(d / "runs" / "plot.png", if_exists="number"); first.name
    'plot.png'
    >>> _ = first.write_bytes(b"result 1")
    >>> claim_output(d / "runs" / "plot.png", if_exists="number").name
    'plot-1.png'
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

__all__ = ["IF_EXISTS", "claim_output", "numbered", "write_atomic", "write_text"]

#: What :func:`claim_output` does when the file exists.
IF_EXISTS = ("error", "number", "overwrite")


def numbered(path: Path) -> Path:
    """The first of ``path``, ``stem-1.suffix``, ``stem-2.suffix``, ... that does not exist.

    Example:
        >>> numbered(Path("/nonexistent-dir/aimc-demo.png")).name
        'aimc-demo.png'
    """
    if not path.exists():
        return path
    suffix = "".join(path.suffixes[-1:])
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    n = 1
    while (candidate := path.with_name(f"{stem}-{n}{suffix}")).exists():
        n += 1
    return candidate


def claim_output(path: str | os.PathLike, *, if_exists: str = "error",
                 hint: str = "pass if_exists='overwrite' to replace it or 'number' to write beside it",
                 mkdir: bool = True) -> Path:
    """Check an output file path against the policy (module doc); create its directory.

    Args:
        path: the file to write.
        if_exists: ``"error"`` (explicit paths), ``"number"`` (default paths) or
            ``"overwrite"`` (explicit paths with ``--force``).
        hint: what the user can do when an existing file is refused (ends the message).
        mkdir: create missing parent directories (False: only check, e.g. before a long
            run that writes at its end).

    Returns:
        The path to write: ``path`` itself, or its first free numbered name.

    Raises:
        FileExistsError: ``path`` exists and ``if_exists`` is ``"error"``.
        ValueError: ``path`` is (or names) a directory, its parent is a file, or
            ``if_exists`` is not one of :data:`IF_EXISTS`.
    """
    if if_exists not in IF_EXISTS:
        raise ValueError(f"if_exists must be one of {', '.join(IF_EXISTS)}, got {if_exists!r}")
    text = os.fspath(path)
    p = Path(text).expanduser()
    if not text or text.endswith(("/", os.sep)) or p.is_dir():
        raise ValueError(f"{text or repr(text)} is a directory, not a file name; give a file path (inside it)")
    parent = p.parent
    for folder in (parent, *parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ValueError(f"cannot write {p}: {folder} is a file, not a directory")
            break
    if p.exists() or p.is_symlink():
        if if_exists == "error":
            raise FileExistsError(f"{p} exists; {hint}")
        if if_exists == "number":
            p = numbered(p)
    if mkdir:
        parent.mkdir(parents=True, exist_ok=True)
    return p


def write_atomic(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Write a file all at once: ``write(tmp)`` writes a temporary file beside ``path``,
    which then replaces ``path`` in one step (``os.replace``), so a reader never sees a
    half-written file and an error (or a killed process) leaves none under the real name.

    Example:
        >>> import tempfile, pathlib
        >>> p = write_atomic(pathlib.Path(tempfile.mkdtemp()) / "a.txt", lambda t: t.write_text("done"))
        >>> p.read_text()
        'done'
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: str | os.PathLike, text: str, *, if_exists: str = "error",
               hint: str = "pass if_exists='overwrite' to replace it or 'number' to write beside it") -> Path:
    """Write ``text`` (UTF-8) under the policy of :func:`claim_output`, atomically: into a
    temporary file beside it, then renamed over the name, so an error (or a crash) never
    leaves a partial file under the real name.

    Returns:
        The path written (numbered when ``if_exists="number"`` and the name was taken).

    Example:
        >>> import tempfile, pathlib
        >>> p = write_text(pathlib.Path(tempfile.mkdtemp()) / "plan.json", "{}")
        >>> p.read_text()
        '{}'
    """
    p = claim_output(path, if_exists=if_exists, hint=hint)
    return write_atomic(p, lambda tmp: tmp.write_text(text, encoding="utf-8"))
