"""aimc sort / sort-app / bench sort."""
import json


def test_sort_json_and_output(cli, tmp_path):
    out = tmp_path / "sorted.txt"
    res = cli.ok(["sort", "--n", "200", "--bits", "12", "--dist", "duplicates", "--chip", "ideal", "--json",
                  "--output", str(out)])
    s = json.loads(res.stdout)
    for key in ("n", "bits", "strategy", "reads_per_key", "energy_pJ_per_key", "latency_ns_per_key", "errors",
                "sorted_ok"):
        assert key in s
    assert s["sorted_ok"] and s["n"] == 200
    vals = [int(v) for v in out.read_text().split()]
    assert vals == sorted(vals) and len(vals) == 200
    assert "exists" in cli.error(["sort", "--n", "10", "--chip", "ideal", "--output", str(out)])
    cli.ok(["sort", "--n", "10", "--chip", "ideal", "--output", str(out), "--force"])


def test_sort_input_file(cli, tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("3.5, -1\n2e3 0.25\n")
    s = json.loads(cli.ok(["sort", "--input", str(f), "--chip", "ideal", "--strategy", "multi-level", "--json"]).stdout)
    assert s["bits"] == 64 and s["sorted_ok"] and s["levels"] == 4


def test_sort_bad_input(cli, tmp_path):
    empty = tmp_path / "e.txt"
    empty.write_text(" \n")
    nan = tmp_path / "n.txt"
    nan.write_text("1 nan 2")
    assert "empty" in cli.error(["sort", "--input", str(empty)])
    assert "NaN" in cli.error(["sort", "--input", str(nan)])
    assert "unknown strategy" in cli.error(["sort", "--strategy", "quick"])
    assert "top_k" in cli.error(["sort", "--n", "4", "--chip", "ideal", "--top-k", "0", "--engine", "search"])
    assert "no such file" in cli.error(["sort", "--input", str(tmp_path / "missing.txt")])
    assert "unknown distribution" in cli.error(["sort", "--dist", "zipf"])


def test_sort_app_and_bench(cli):
    r = json.loads(cli.ok(["sort-app", "dijkstra", "--nodes", "40", "--radius", "0.3", "--chip", "ideal",
                           "--json"]).stdout)
    assert r["match"]
    assert "dijkstra or prune" in cli.error(["sort-app", "bfs"])
    b = json.loads(cli.ok(["bench", "sort", "--keys", "2000", "--repeats", "1", "--json"]).stdout)
    assert {"keys", "ms", "numpy_ms", "ratio"} <= set(b) and b["sorted_ok"]
