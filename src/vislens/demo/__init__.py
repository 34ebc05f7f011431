"""`vislens demo DIR`: every stage of vislens on the embedded toy world, scored against its truth.

1. a synthetic grid world (seed 004's layout) under DIR/world and a study DIR/study on it;
2. the toy VLM's vision-tower activations, and a few questions to the toy, checked;
3. an SAE on the tower's patch tokens: codes, top-k, monosemanticity, correlations with the
   world's concept counts, tiers;
4. LatentLens: a contextual bank from the world's captions, neighbours of every visual
   token, EmbeddingLens and LogitLens beside it;
5. the visual-search probe: presence and location questions, attention to the grid, heads
   ranked TP vs FN, localisation against the evidence cells;
6. a 2-D map of the images with the toy's own answers as seed 003's mis/correct CSVs;
7. the scorecard, ``reports/scorecard.json``: every lens against the ground truth;
8. (CLI) the workbench over the study.

Each stage is recorded in ``reports/demo/`` when it finishes, so running the demo again
reuses what is done, and a demo killed mid-stage re-runs only that stage.
"""

from __future__ import annotations

from vislens.demo.commands import register
from vislens.demo.pipeline import DemoSettings
from vislens.demo.run import run_demo

__all__ = ["DemoSettings", "register", "run_demo"]
