"""``aimc sort``: sort a file of numbers or a generated data set on a simulated
sort-in-memory array (:mod:`aimc.workloads.sorting`), and price it.

Example:
    >>> from typer.testing import CliRunner
    >>> from aimc.cli.main import app
    >>> out = CliRunner().invoke(app, ["sort", "--n", "64", "--bits", "8", "--chip", "ideal", "--json"]).stdout
    >>> '"sorted_ok": true' in out
    True
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from aimc.cli.common import console, output_file, user_errors

__all__ = ["sort_cmd", "sort_app_cmd"]


def sort_cmd(
    input: Optional[Path] = typer.Option(None, "--input", help="Text file of numbers (whitespace/comma separated)."),
    dist: str = typer.Option("uniform", help="Generated data: uniform|normal|clustered|nearly-sorted|duplicates."),
    n: int = typer.Option(1024, help="Generated keys."),
    bits: Optional[int] = typer.Option(None, help="Key width (generated data: default 32; files: what they need, "
                                                   "floats 64)."),
    value_bits: Optional[int] = typer.Option(None, help="Generated data: values in [0, 2**value_bits) "
                                                         "(default: the full --bits range)."),
    seed: int = typer.Option(0, help="Seed of the data and of the device draws."),
    chip: str = typer.Option("rram-1t1r", help="Chip preset or YAML (its device and array size); 'ideal': exact."),
    strategy: str = typer.Option("tns", help="bit-traversal|tns|multi-bank|bit-slice|multi-level."),
    states: int = typer.Option(2, help="Recorded states of Tree Node Skipping."),
    descending: bool = typer.Option(False, help="Largest first (max searches)."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Stop after this many keys."),
    banks: Optional[int] = typer.Option(None, help="multi-bank: banks to split the data over."),
    slice_digits: int = typer.Option(8, help="bit-slice: columns per slice array."),
    engine: str = typer.Option("auto", help="auto|search|trie (trie: every cell sensed once)."),
    sense: str = typer.Option("row", help="row|current (current: wired-OR column current decides 'a 0 exists')."),
    t_s: float = typer.Option(0.0, "--t-s", help="Seconds between programming and sorting (retention)."),
    read_noise: Optional[float] = typer.Option(None, help="Override the device's read noise (relative to g)."),
    on_off: Optional[float] = typer.Option(None, help="Override the device's on/off ratio."),
    stuck: Optional[float] = typer.Option(None, help="Override the stuck-at rate (half stuck on, half off)."),
    d2d: Optional[float] = typer.Option(None, help="Override the device-to-device spread (lognormal sigma)."),
    output: Optional[Path] = typer.Option(None, "--output", help="Write the sorted keys here, one per line."),
    force: bool = typer.Option(False, help="Overwrite an existing --output."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Sort numbers in a simulated 1T1R memristor array without comparators (Digit Read + TNS)."""
    from aimc.workloads.sorting import sort_keys
    from aimc.workloads.sorting.data import generate, read_numbers, write_numbers

    with user_errors():
        if input is not None and not input.is_file():
            raise FileNotFoundError(f"--input {input}: no such file")
        out_path = output_file(output, "aimc-sorted.txt", force, option="--output") if output else None
        if input is not None:
            values = read_numbers(input)
        else:
            bits = 32 if bits is None else bits
            values = generate(dist, n, bits, seed, value_bits=value_bits)
        r = sort_keys(values, chip=chip, strategy=strategy, states=states, bits=bits, descending=descending,
                      top_k=top_k, banks=banks, slice_digits=slice_digits, sense=sense, engine=engine, t_s=t_s,
                      seed=seed, device={"read_noise_rel": read_noise, "on_off_ratio": on_off, "p_stuck": stuck,
                                         "sigma_d2d": d2d})
        if out_path is not None:
            write_numbers(out_path, r.values)
    s = r.summary()
    s["dist"] = None if input is not None else dist
    s["chip"] = chip
    if as_json:
        typer.echo(json.dumps(s))
        return
    table = Table(title=f"{s['n']} keys of {s['bits']} bits, {strategy} (k={s['states']}) on {chip}")
    table.add_column("quantity")
    table.add_column("sort-in-memory", justify="right")
    table.add_column("merge-sort tree", justify="right")
    table.add_row("reads per key", f"{s['reads_per_key']:.2f}", "-")
    table.add_row("energy per key (pJ)", f"{s['energy_pJ_per_key']:.2f}", f"{s['digital_energy_pJ_per_key']:.2f}")
    table.add_row("time per key (ns)", f"{s['latency_ns_per_key']:.2f}", f"{s['digital_latency_ns_per_key']:.2f}")
    table.add_row("area (mm2)", f"{s['area_mm2']:.4f}", f"{s['digital_area_mm2']:.4f}")
    table.add_row("keys out of place", str(s["errors"]), "0")
    console.print(table)
    if out_path is not None:
        console.print(f"sorted keys written to {out_path}")


def sort_app_cmd(
    name: str = typer.Argument(..., help="dijkstra | prune"),
    chip: str = typer.Option("rram-1t1r", help="Chip preset or YAML."),
    nodes: int = typer.Option(200, help="dijkstra: graph nodes."),
    radius: float = typer.Option(0.15, help="dijkstra: connection radius in the unit square."),
    bits: int = typer.Option(16, help="dijkstra: distance key width."),
    sparsity: Optional[list[float]] = typer.Option(None, help="prune: sparsities (repeatable)."),
    epochs: int = typer.Option(30, help="prune: training epochs of the digits CNN."),
    seed: int = typer.Option(0, help="Seed of the graph / training and of the device draws."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Applications of the in-memory sorter: Dijkstra's shortest paths (priority queue) and pruning (top-k)."""
    from aimc.workloads.sorting.apps import dijkstra_in_memory, pruning_table

    with user_errors():
        if name == "dijkstra":
            rows = [dijkstra_in_memory(n_nodes=nodes, radius=radius, chip=chip, bits=bits, seed=seed)]
        elif name == "prune":
            rows = pruning_table(sparsities=tuple(sparsity) if sparsity else (0.0, 0.3, 0.5, 0.6, 0.7, 0.9),
                                 chips=("ideal", chip) if chip != "ideal" else ("ideal",), epochs=epochs, seed=seed)
        else:
            raise ValueError(f"unknown application {name!r}; choose dijkstra or prune")
    if as_json:
        for r in rows:
            typer.echo(json.dumps(r))
        return
    table = Table(title=f"sort-in-memory application: {name}")
    for col in rows[0]:
        table.add_column(col)
    for r in rows:
        table.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in r.values()])
    console.print(table)
