import pytest

#: A sweep small enough for the default suite: a 64-8-10 MLP, one epoch, 60 test images.
TINY = "model: mlp\nhidden: [8]\nepochs: 1\nmax_test: 60\nbatch_size: 64\n"

#: Columns that record when and how long, not what: they differ between runs.
TIMING = ("started_at", "wall_s")


def sweep_file(tmp_path, body: str, name: str = "s.yaml"):
    f = tmp_path / name
    f.write_text(TINY + body)
    return f


def rows(table):
    """The table's rows without the timing columns."""
    return [{k: v for k, v in r.items() if k not in TIMING} for r in table.to_pylist()]


@pytest.fixture
def tiny(tmp_path):
    return lambda body, name="s.yaml": sweep_file(tmp_path, body, name)
