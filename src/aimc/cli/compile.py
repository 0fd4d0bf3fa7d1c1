"""``aimc compile MODEL --chip NAME --policy P -o plan.json``: compile a model onto a chip.

Example:
    >>> import json, tempfile, pathlib
    >>> from typer.testing import CliRunner
    >>> from aimc.cli.main import app
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "plan.json"
    >>> r = CliRunner().invoke(app, ["compile", "mvm:512x512", "--chip", "pcm-hermes", "-o", str(out)])
    >>> json.loads(out.read_text())["expected"]["tiles_used"]
    4
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer

from aimc.cli.common import console, err, fail, output_file, user_errors
from aimc.cli.plan import summary_lines

__all__ = ["compile_cmd", "parse_budget", "parse_time_s"]

_TIME_UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "day": 86400.0, "month": 2592000.0,
               "y": 31536000.0, "year": 31536000.0}


def parse_budget(text: str) -> float:
    """``"1%"`` -> 0.01 (accuracy points); a bare number is a fraction in [0, 1].

    Example:
        >>> parse_budget("1%"), parse_budget("0.005")
        (0.01, 0.005)
    """
    t = text.strip()
    try:
        v = float(t[:-1]) / 100.0 if t.endswith("%") else float(t)
    except ValueError:
        raise ValueError(f"--budget must be like 1% or 0.01, got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"--budget must lie in 0%..100%, got {text!r}")
    return v


def parse_time_s(text: str) -> float:
    """A time since programming: seconds, or a number with s, min, h, d, month, y.

    Example:
        >>> parse_time_s("1d"), parse_time_s("3600"), parse_time_s("1 y")
        (86400.0, 3600.0, 31536000.0)
    """
    m = re.fullmatch(r"\s*([0-9.eE+-]+)\s*([a-z]*)\s*", text)
    if not m or m.group(2) not in ("", *_TIME_UNITS):
        raise ValueError(f"time {text!r}: give seconds or a number with one of {', '.join(_TIME_UNITS)} (e.g. 1d)")
    try:
        v = float(m.group(1)) * _TIME_UNITS.get(m.group(2), 1.0)
    except ValueError:
        raise ValueError(f"time {text!r}: {m.group(1)!r} is not a number") from None
    if not 0.0 <= v < float("inf"):
        raise ValueError(f"time {text!r} must be finite and >= 0")
    return v


def compile_cmd(
    model: str = typer.Argument(..., help="digits-cnn, digits-transformer, fashion-cnn, a .safetensors checkpoint "
                                          "from `aimc train`, an .onnx file, encoder:D,H,FF,BLOCKS (untrained), or a shape-only "
                                          "workload of `aimc estimate` (mvm:..., transformer:...)."),
    chip: str = typer.Option("pcm-hermes", help="Chip preset name (see `aimc chips`) or a YAML file."),
    policy: str = typer.Option("all-analog", help="all-analog, all-digital, sensitivity (needs --budget) or "
                                                   "energy (needs --latency-us)."),
    budget: Optional[str] = typer.Option(None, help="sensitivity: accuracy the plan may lose against floating "
                                                    "point on the calibration data, e.g. 1% (= 1 point)."),
    latency_us: Optional[float] = typer.Option(None, "--latency-us", help="energy: latency bound, µs per inference."),
    on_overflow: str = typer.Option("fail", "--on-overflow", help="When the model needs more tiles than the chip "
                                                                  "has: fail, or multiplex (reprogram in rounds)."),
    t: str = typer.Option("1d", "--t", help="sensitivity: time since programming to measure at (e.g. 1d, 3600)."),
    seeds: int = typer.Option(10, help="sensitivity: chips (programming seeds 0..N-1) per measurement; the "
                                       "chip-to-chip spread of the confidence bound is estimated from them."),
    confidence: float = typer.Option(0.95, help="sensitivity: one-sided confidence of the accuracy drop's upper "
                                                "bound that must meet --budget (0.5: the mean, no margin)."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Plan file to write (default plan.json, numbered "
                                                                "if taken)."),
    force: bool = typer.Option(False, "--force", help="Overwrite -o if it exists."),
    data_root: Optional[Path] = typer.Option(None, help="Folder of the data files (fashion-mnist)."),
    dataset: Optional[str] = typer.Option(None, help="An .onnx MODEL's data set (digits or fashion-mnist): "
                                                     "calibration for sensitivity, test images for `aimc run`."),
) -> None:
    """Compile a model onto a chip: assignment, partition, placement, schedule; write a JSON plan."""
    from aimc.chips import load
    from aimc.compile import Calibration, compile_model
    from aimc.outputs import write_text
    from aimc.workloads.compile_models import load_model

    if seeds < 1:
        fail(f"--seeds must be >= 1, got {seeds}")
    if not 0.5 <= confidence < 1.0:
        fail(f"--confidence must lie in [0.5, 1), got {confidence:g}")
    with user_errors():
        path = output_file(out, "plan.json", force, option="-o")
        b = parse_budget(budget) if budget is not None else None
        t_s = parse_time_s(t)
        spec = load(chip)
        m = load_model(model, spec, data_root=str(data_root) if data_root else None, dataset=dataset)
        cal = (Calibration(m.module, *m.calibration, data=f"{m.dataset} calibration split")
               if m.module is not None and m.calibration is not None else None)
        plan = compile_model(m.work, spec, policy, spec=model, budget=b, latency_us=latency_us,
                             on_overflow=on_overflow, calibration=cal, t_s=t_s, seeds=seeds, confidence=confidence,
                             n_params=m.n_params, dataset=m.dataset, host_ops=m.host_ops,
                             progress=lambda s: err.print(s, highlight=False) if err.is_terminal else None)
        path = write_text(path, plan.to_json(), if_exists="overwrite")  # claimed above
    for line in summary_lines(plan):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(f"plan written to {path}", highlight=False, soft_wrap=True)
