"""Where a stage's per-batch work runs: in this process (the default) or on a Ray cluster.

``ray_data.map_units`` runs a stage's own batch function as a Ray Data ``map_batches`` over
an actor pool; the stage writes the results with the same writer as its local loop, so the
files do not depend on the engine. See docs/scale.md.
"""

from __future__ import annotations

from typing import Literal

Engine = Literal["local", "ray"]
ENGINES: tuple[str, ...] = ("local", "ray")
