"""Hypothesis: malformed run directories and tables are refused with a clear error that
names the file (and column), never a traceback from deep inside pyarrow or plotly; valid
tables always report."""
import string

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimc.report.charts import build_charts
from aimc.report.run import RunError, load_run

SETTINGS = dict(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

names = st.one_of(st.sampled_from(["point_id", "seed", "m.accuracy", "m.energy_pJ", "p.t_s", "p.adc.bits", "m.alive",
                                   "p.d0_per_cm2", "p.chip", "wall_s"]),
                  st.text(string.ascii_letters + "._", min_size=1, max_size=8))
values = st.one_of(st.lists(st.integers(-3, 3), min_size=0, max_size=6),
                   st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=0, max_size=6),
                   st.lists(st.text(max_size=3), min_size=0, max_size=6),
                   st.lists(st.booleans(), min_size=0, max_size=6),
                   st.lists(st.none(), min_size=0, max_size=6))


@st.composite
def tables(draw):
    cols = draw(st.dictionaries(names, values, max_size=6))
    n = min((len(v) for v in cols.values()), default=0)
    return {k: v[:n] for k, v in cols.items()}


def _check(tmp, kind, payload):
    tmp.mkdir(parents=True, exist_ok=True)
    for f in tmp.iterdir():
        f.unlink()
    target = tmp / ("results.parquet" if kind != "csv" else "results.csv")
    if kind == "bytes":
        target.write_bytes(payload)
    else:
        table = pa.table(payload) if payload else pa.table({})
        if kind == "csv":
            import pyarrow.csv as pacsv
            pacsv.write_csv(table, target)
        else:
            pq.write_table(table, target)
    try:
        run = load_run(tmp)
    except RunError as e:
        msg = str(e)
        assert "results." in msg and "\n" not in msg, msg
        return
    # accepted: the contract holds and the charts build
    assert {"point_id", "seed"} <= set(run.columns) and run.metrics
    assert build_charts(run)


@settings(**SETTINGS)
@given(tables())
def test_random_parquet_tables(tmp_path_factory, cols):
    _check(tmp_path_factory.mktemp("run"), "parquet", cols)


@settings(**SETTINGS)
@given(tables())
def test_random_csv_tables(tmp_path_factory, cols):
    _check(tmp_path_factory.mktemp("run"), "csv", cols)


@settings(**SETTINGS)
@given(st.binary(max_size=64))
def test_garbage_files(tmp_path_factory, data):
    _check(tmp_path_factory.mktemp("run"), "bytes", data)


def test_named_errors(tmp_path):
    cases = [({"seed": [0], "m.accuracy": [1.0]}, "'point_id' is missing"),
             ({"point_id": [0.5], "seed": [0], "m.accuracy": [1.0]}, "'point_id' must hold integers"),
             ({"point_id": [0], "seed": [0], "p.t_s": [1.0]}, "no metric column"),
             ({"point_id": [0], "seed": [0], "m.accuracy": ["high"]}, "'m.accuracy' must be numeric"),
             ({"point_id": [0, 0], "seed": [1, 1], "m.accuracy": [1.0, 0.9]}, "duplicate"),
             ({"point_id": pa.array([], pa.int64()), "seed": pa.array([], pa.int64()),
               "m.accuracy": pa.array([], pa.float64())}, "no rows")]
    for cols, want in cases:
        for f in tmp_path.iterdir():
            f.unlink()
        pq.write_table(pa.table(cols), tmp_path / "results.parquet")
        try:
            load_run(tmp_path)
        except RunError as e:
            assert want in str(e) and "results.parquet" in str(e)
        else:
            raise AssertionError(f"accepted {cols}")
