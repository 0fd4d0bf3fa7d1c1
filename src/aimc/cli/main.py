"""The ``aimc`` command: one module per command group, assembled here; each parses
arguments and calls the library, nothing more (shared helpers: :mod:`aimc.cli.common`).

Commands:
    aimc demo [--dataset digits|fashion-mnist] [--chip pcm-hermes] [--chips 10] [--seed 0]
              [--out FILE] [--force] [--json] [--checkpoint FILE]
    aimc bench mvm [--chip pcm-hermes] [--repeats 20] [--warmup 3] [--threads N] [--json]
    aimc bench cnn [--chip pcm-hermes] [--batch 128] [--threads N] [--json]
    aimc bench train [--chip rram-1t1r] [--repeats 5] [--name hat ...] [--threads N] [--json]
    aimc bench mc [--chips 100] [--chip pcm-hermes] [--t-s 86400] [--repeats 3] [--json]
    aimc chips [schema | validate FILE...]
    aimc baselines
    aimc llm3d simulate --model NAME|CONFIG.json [--chip 3d-nvm] [--mapping STRATEGY] [--batch B]
              [--prompt P] [--generate G] [--baseline gpu-h100] [--density FILE.json] [--plot PATH] [--json]
    aimc llm3d sweep-batch --model NAME [--model NAME ...] [--batch B ...] [--baseline gpu-h100] [--plot PATH] [--json]
    aimc --version
    aimc estimate MODEL [--chip pcm-hermes] [--baseline gpu-a100] [--json] [--plot PATH] [--force]
    aimc sort [--input FILE | --dist uniform --n N --bits B] [--chip rram-1t1r] [--strategy tns]
              [--states K] [--json] [--output FILE] [--force]
    aimc sort-app dijkstra|prune [--chip rram-1t1r] [--json]
    aimc bench sort [--keys 1000000] [--json]
    aimc train [--method hat|digital|hybrid|<on-chip>] [--init FILE] [--out FILE] [--force]
    aimc report RUN_DIR [--out DIR] [--force] [--no-png] [--threshold ACC]
    aimc sweep FILE [--out RUN_DIR] [--workers N] [--cluster tcp://HOST:PORT | --scheduler-file FILE]
    aimc compile MODEL [--chip NAME] [--policy P] [--budget 1%] [--latency-us X]
                 [--on-overflow fail|multiplex] [--dataset digits] [-o plan.json] [--force]
    aimc export MODEL -o model.onnx [--force]
    aimc plan show plan.json [--map PNG]
    aimc plan schema
    aimc run plan.json [--data test|calibration] [--seeds N] [--t 1s,1d,1y] [--json]
    aimc estimate plan.json [--json]

Bad input (unknown dataset or chip, ``--chips 0``, an existing ``--out`` without
``--force``, an unreadable checkpoint) prints one ``error: ...`` line to stderr and exits
with status 2. Default outputs are numbered on a rerun (``aimc-demo-1.png``, ...).

Example:
    >>> from typer.testing import CliRunner
    >>> from aimc.cli.main import app
    >>> "ideal" in CliRunner().invoke(app, ["chips"]).stdout
    True
"""
from __future__ import annotations

import typer

import aimc
from aimc.cli.baselines import baselines_cmd
from aimc.cli.bench import bench_app
from aimc.cli.chips import chips_app
from aimc.cli.compile import compile_cmd
from aimc.cli.demo import demo
from aimc.cli.estimate import estimate_cmd
from aimc.cli.export import export_cmd
from aimc.cli.llm3d import llm3d_app
from aimc.cli.report import report_cmd
from aimc.cli.sort import sort_app_cmd, sort_cmd
from aimc.cli.sweep import sweep_cmd
from aimc.cli.plan import plan_app
from aimc.cli.run import run_cmd
from aimc.cli.train import train

app = typer.Typer(help="aimc: simulate neural networks on analog in-memory computing chips.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False,
                  rich_markup_mode=None)  # help texts are plain: Rich markup would eat "[...]"


def _print_version(value: bool) -> None:
    # aimc.__version__ is the one source: pyproject reads it too ([tool.setuptools.dynamic]).
    if value:
        typer.echo(f"aimc {aimc.__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", help="Print the aimc version and exit.",
                                       callback=_print_version, is_eager=True)) -> None:
    """aimc: simulate neural networks on analog in-memory computing chips."""


app.command()(demo)
app.command()(train)
app.command("baselines")(baselines_cmd)
app.command("estimate")(estimate_cmd)
app.command("export")(export_cmd)
app.command("sort")(sort_cmd)
app.command("sort-app")(sort_app_cmd)
app.command("report")(report_cmd)
app.command("sweep")(sweep_cmd)
app.add_typer(bench_app, name="bench")
app.add_typer(chips_app, name="chips")
app.add_typer(llm3d_app, name="llm3d")
app.command("compile")(compile_cmd)
app.command("run")(run_cmd)
app.add_typer(plan_app, name="plan")


if __name__ == "__main__":  # python -m aimc.cli.main
    app()
