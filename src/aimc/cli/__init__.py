"""Command-line interface of aimc (``aimc --help``); see :mod:`aimc.cli.main`."""
