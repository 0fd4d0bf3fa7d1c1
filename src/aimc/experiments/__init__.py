"""What the README's figures run: the demo, the benchmarks, the training and cost tables.

Outer ring: may import every core layer and :mod:`aimc.workloads` / :mod:`aimc.report`;
nothing in the core imports it.
"""
