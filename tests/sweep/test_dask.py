"""A sweep on a real dask.distributed cluster: a LocalCluster of two worker processes
(scheduler, nannies and workers, no mock) started here.

* 50 points x 2 seeds (6 in the default suite) give the same table as the in-process
  executor, same seeds;
* a worker killed (SIGKILL) mid-sweep: the sweep completes, the scheduler reruns the
  killed worker's tasks elsewhere, and no finished point is lost or duplicated.
"""
import os
import signal

import pytest

from aimc.sweep.executors import DaskExecutor
from aimc.sweep.results import finished_points, read_table
from aimc.sweep.run import run_sweep

from .conftest import rows

distributed = pytest.importorskip("distributed")

BODY = "seeds: 2\ngrid: {adc.bits: [4, 5, 6, 7, 8], t_s: [1, 10, 100, 1000, 3600, 1.0e4, 86400, 1.0e6, 1.0e7, 3.0e7]}\n"


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  env={"OMP_NUM_THREADS": "1"}) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def local_table(tmp_path_factory):
    d = tmp_path_factory.mktemp("local")
    f = d / "s.yaml"
    from .conftest import TINY
    f.write_text(TINY + BODY)
    return f, rows(read_table(run_sweep(f, d / "run", workers=0)))


def test_a_few_points_on_two_dask_workers_give_the_local_table(client, tmp_path):
    from .conftest import TINY
    f = tmp_path / "few.yaml"
    f.write_text(TINY + "seeds: 2\ngrid: {adc.bits: [6, 8], t_s: [1, 86400, 3.0e7]}\n")
    expected = rows(read_table(run_sweep(f, tmp_path / "local", workers=0)))
    assert rows(read_table(run_sweep(f, tmp_path / "dask", executor=DaskExecutor(client=client)))) == expected


@pytest.mark.slow  # ~1 min on a busy 2-core machine (50 points twice)
def test_fifty_points_on_two_dask_workers_give_the_local_table(client, local_table, tmp_path):
    f, expected = local_table
    assert len(expected) == 50 * 2
    run = run_sweep(f, tmp_path / "run", executor=DaskExecutor(client=client))
    assert rows(read_table(run)) == expected
    assert len(client.scheduler_info()["workers"]) == 2


@pytest.mark.slow  # ~30 s on a busy 2-core machine
def test_killing_a_worker_mid_sweep_loses_and_duplicates_nothing(client, local_table, tmp_path):
    f, expected = local_table
    pids = client.run(os.getpid)  # worker address -> process id
    victim = sorted(pids)[0]
    killed = []

    def progress(advance, total, description):
        if advance and not killed and len(finished_points(tmp_path / "run")) >= 5:
            processing = client.processing()  # tasks the scheduler has on each worker now
            os.kill(pids[victim], signal.SIGKILL)
            killed.append(len(processing.get(victim, ())))

    run = run_sweep(f, tmp_path / "run", executor=DaskExecutor(client=client), progress=progress)
    assert killed and killed[0] >= 1  # it died holding work
    got = rows(read_table(run))
    keys = [(r["point_id"], r["seed"]) for r in got]
    assert len(keys) == len(set(keys)) == 100
    assert got == expected
    assert victim not in client.scheduler_info()["workers"]  # the nanny started a new one
