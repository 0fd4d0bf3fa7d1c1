"""The CLI shows the library's kernel-build message above its progress bar and in the bar."""
import io
import logging

from rich.console import Console
from rich.progress import Progress, TextColumn

from aimc.cli import common


def test_library_log_lines_reach_the_bar():
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    with Progress(TextColumn("{task.description}"), console=console) as bar:
        with common.library_log(bar) as show:
            show.task = bar.add_task("training", total=None)
            logging.getLogger("aimc.cpp").warning("aimc: compiling C++ kernels (once) into %s ...", "/tmp/x",
                                                  extra={"progress": "compiling C++ kernels"})
            assert bar.tasks[0].description == "compiling C++ kernels"
            logging.getLogger("aimc.cpp").info("aimc: C++ kernels compiled in %.0f s", 41.0)
    text = console.file.getvalue()
    assert text.count("aimc: compiling C++ kernels (once) into /tmp/x ...") == 1
    assert "compiled in 41 s" in text
    assert not logging.getLogger("aimc").handlers  # removed afterwards
