"""``aimc export MODEL -o model.onnx``: a trained model as an ONNX file (for ``aimc compile``'s
ONNX route, or any other tool).

Example:
    >>> from typer.testing import CliRunner
    >>> from aimc.cli.main import app
    >>> "ONNX" in CliRunner().invoke(app, ["export", "--help"]).stdout
    True
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aimc.cli.common import console, user_errors

__all__ = ["export_cmd"]


def export_cmd(
    model: str = typer.Argument(..., help="digits-cnn, digits-transformer, fashion-cnn or a .safetensors checkpoint "
                                          "from `aimc train` (trained as `aimc compile` trains it)."),
    out: Path = typer.Option(..., "-o", "--out", help="ONNX file to write."),
    force: bool = typer.Option(False, "--force", help="Overwrite -o if it exists."),
    seed: int = typer.Option(0, help="Training seed of a named model (aimc compile uses 0)."),
    data_root: Optional[Path] = typer.Option(None, help="Folder of the data files (fashion-mnist)."),
) -> None:
    """Write a trained model as an ONNX file (batch 1, torch.onnx's dynamo exporter)."""
    from aimc.workloads.compile_models import export_onnx

    with user_errors():
        path = export_onnx(model, out, seed=seed, data_root=str(data_root) if data_root else None,
                           if_exists="overwrite" if force else "error")
    console.print(f"ONNX written to {path}", highlight=False, soft_wrap=True)
