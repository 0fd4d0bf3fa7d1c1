"""Plots of results (matplotlib, an optional dependency: ``pip install 'aimc[plot]'``)."""
