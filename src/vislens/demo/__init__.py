"""`vislens demo DIR`: every stage of vislens on the embedded toy world, scored against its truth.

1. a synthetic grid world (seed 004's layout) under DIR/world and a study DIR/study on it;
2. the toy VLM's vision-tower activations (resumable);
3. a few questions to the toy VLM, checked against the scene;
4. an SAE on the tower's patch tokens: codes, top-k, monosemanticity, correlations with the
   world's concept counts, tiers;
5. the scorecard, ``reports/scorecard.json``: every lens against the ground truth.

Each stage is recorded in ``reports/demo/`` when it finishes, so running the demo again
reuses what is done, and a demo killed mid-stage re-runs only that stage.
"""

from __future__ import annotations

from vislens.demo.commands import register
from vislens.demo.pipeline import DemoSettings
from vislens.demo.run import run_demo

__all__ = ["DemoSettings", "register", "run_demo"]
