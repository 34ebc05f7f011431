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

from collections.abc import Callable
from pathlib import Path
from typing import Any

from vislens.demo.commands import register
from vislens.demo.pipeline import DemoSettings

__all__ = ["DemoSettings", "register", "run_demo"]


def run_demo(
    out_dir: Path,
    *,
    n_images: int = 200,
    seed: int = 0,
    settings: DemoSettings | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the demo into ``out_dir``; returns the summary (also study/reports/demo.json)."""
    from vislens.demo import pipeline as p
    from vislens.demo.questions import ask_toy
    from vislens.demo.stages import RECORD_DIR, StageRunner
    from vislens.io import write_json_atomic
    from vislens.study import Study

    s = settings or DemoSettings(n_images=n_images, seed=seed)
    out_dir = Path(out_dir)
    world, study_dir = out_dir / "world", out_dir / "study"
    say = log or (lambda _msg: None)
    p.make_world(world, s)
    p.make_study(study_dir, world)
    study = Study.open(study_dir)
    runner = StageRunner(study.root.joinpath(*RECORD_DIR), s.as_dict(), log=say)

    world_keys = ("n_images", "seed")
    extracted = runner.run("extract", lambda: p.extract_tower(study), depends=world_keys)
    questions = runner.run("questions", lambda: ask_toy(world), depends=world_keys)
    runner.run("sae", lambda: p.sae_stage(study, s), stale=[study.sae_dir(p.SAE_NAME)])
    sae_card = runner.run("sae_scorecard", lambda: p.sae_scorecard(study))

    scorecard = {"settings": s.as_dict(), "sae": sae_card}
    write_json_atomic(study.reports_dir / "scorecard.json", scorecard)
    summary: dict[str, Any] = {
        "study": str(study.root),
        "activations": str(study.activations_dir),
        "n_images": extracted["n_images"],
        "questions": questions["questions"],
        "scorecard": scorecard,
        "stages": runner.timings(),
    }
    write_json_atomic(study.reports_dir / "demo.json", summary)
    return summary
