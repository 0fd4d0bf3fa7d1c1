"""``python -m aimc``: the same as the ``aimc`` command."""
from aimc.cli.main import app

app(prog_name="aimc")
