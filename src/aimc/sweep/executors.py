"""Executors: where a sweep's points run, behind one interface.

An executor takes a list of ``(key, task)`` pairs and a function, runs ``fn(task)`` for
each, and calls ``on_result(key, result)`` in the calling process as each one finishes
(in any order). Two are provided:

* :class:`LocalExecutor` (the default): ``workers`` local processes
  (:class:`concurrent.futures.ProcessPoolExecutor`, ``spawn`` start method, so no
  thread of the parent is forked), or, with ``workers=0``, the calling process itself;
* :class:`DaskExecutor`: an existing ``dask.distributed`` cluster, by scheduler address
  (``tcp://HOST:8786``) or scheduler file, or a :class:`distributed.Client` given
  directly. Tasks are submitted with their key, so the scheduler never runs one key
  twice at once; the tasks of a worker that dies are run again on another worker by the
  scheduler (``distributed.scheduler.allowed-failures`` times at most).

The results do not depend on the executor: every task sets its own thread count and its
random streams come from its seeds.

Example:
    >>> seen = []
    >>> LocalExecutor(workers=0).run([("a", 2), ("b", 3)], abs, lambda k, r: seen.append((k, r)))
    >>> sorted(seen)
    [('a', 2), ('b', 3)]
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Protocol, Sequence

__all__ = ["Executor", "LocalExecutor", "DaskExecutor", "make_executor"]

OnResult = Callable[[Any, Any], None]


class Executor(Protocol):
    """Runs ``fn(task)`` for every ``(key, task)``; ``on_result(key, result)`` as each ends."""

    name: str

    def run(self, tasks: Sequence[tuple[Any, Any]], fn: Callable[[Any], Any], on_result: OnResult) -> None: ...


class LocalExecutor:
    """Local processes (``workers >= 1``) or the calling process (``workers = 0``)."""

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        if int(workers) != workers or workers < 0:
            raise ValueError(f"workers must be an integer >= 0, got {workers!r}")
        self.workers = int(workers)

    def run(self, tasks: Sequence[tuple[Any, Any]], fn: Callable[[Any], Any], on_result: OnResult) -> None:
        if self.workers == 0 or not tasks:
            for key, task in tasks:
                on_result(key, fn(task))
            return
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(self.workers, len(tasks)), mp_context=ctx) as pool:
            pending = {pool.submit(fn, task): key for key, task in tasks}
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        on_result(pending.pop(fut), fut.result())
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise


class DaskExecutor:
    """An existing ``dask.distributed`` cluster (module doc).

    Args:
        address: the scheduler, e.g. ``tcp://10.0.0.1:8786``.
        scheduler_file: or the JSON file ``dask scheduler --scheduler-file`` wrote.
        client: or a connected :class:`distributed.Client` (e.g. of a ``LocalCluster``).
        prefix: start of every task key (keys must be unique on the cluster).
    """

    name = "dask"

    def __init__(self, address: str | None = None, scheduler_file: str | None = None, client: Any = None,
                 prefix: str = "aimc-sweep") -> None:
        if sum(v is not None for v in (address, scheduler_file, client)) != 1:
            raise ValueError("DaskExecutor: give exactly one of address, scheduler_file or client")
        self.address, self.scheduler_file, self.client, self.prefix = address, scheduler_file, client, prefix

    def run(self, tasks: Sequence[tuple[Any, Any]], fn: Callable[[Any], Any], on_result: OnResult) -> None:
        from distributed import Client, as_completed

        own = self.client is None
        client = self.client if not own else Client(self.address, scheduler_file=self.scheduler_file, timeout="30s")
        try:
            keys = {f"{self.prefix}-{key}": key for key, _ in tasks}
            futures = [client.submit(fn, task, key=k, pure=False) for k, (_, task) in zip(keys, tasks)]
            try:
                for fut in as_completed(futures):
                    on_result(keys[fut.key], fut.result())
            except BaseException:
                client.cancel(futures)
                raise
        finally:
            if own:
                client.close()


def make_executor(cluster: str | None = None, scheduler_file: str | None = None, workers: int = 1,
                  prefix: str = "aimc-sweep") -> Executor:
    """The executor of the command line: a Dask cluster by address or scheduler file,
    else local processes.

    Example:
        >>> make_executor().name, make_executor(cluster="tcp://127.0.0.1:8786").name
        ('local', 'dask')
    """
    if cluster is not None and scheduler_file is not None:
        raise ValueError("give --cluster or --scheduler-file, not both")
    if cluster is not None or scheduler_file is not None:
        return DaskExecutor(address=cluster, scheduler_file=scheduler_file, prefix=prefix)
    return LocalExecutor(workers)
