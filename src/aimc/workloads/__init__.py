"""Models, data sets and recipes: what aimc runs on a chip (outer ring).

:mod:`.data` loads the bundled and optional data sets, :mod:`.models` builds the demo
networks, :mod:`.catalog` names the workloads that ``aimc estimate`` prices.
"""
