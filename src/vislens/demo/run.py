"""The demo's stages in order (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from vislens.demo.pipeline import DemoSettings


def run_demo(
    out_dir: Path,
    *,
    n_images: int = 200,
    seed: int = 0,
    settings: DemoSettings | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the demo into ``out_dir``; returns the summary (also study/reports/demo.json)."""
    import vislens.demo.pipeline as p
    from vislens.demo.explore import map_stage
    from vislens.demo.judging import judge_step
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
    sae_keys = (*world_keys, "sae_steps", "sae_features", "sae_k")
    runner.run("sae", lambda: p.sae_stage(study, s), depends=sae_keys,
               stale=[study.sae_dir(p.SAE_NAME)])  # fmt: skip
    sae_card = runner.run("sae_scorecard", lambda: p.sae_scorecard(study), depends=sae_keys)
    lens_keys = (*world_keys, "lens_images")
    lens = runner.run("lens", lambda: p.lens_stage(study, s), depends=lens_keys,
                      stale=[study.lens_dir])  # fmt: skip
    probe_keys = (*world_keys, "probe_images")
    probe = runner.run("probe", lambda: p.probe_stage(study, s), depends=probe_keys,
                       stale=[study.probe_dir])  # fmt: skip
    judge = judge_step(study, runner, say)
    mapped = runner.run("map", lambda: map_stage(study, s.seed), depends=world_keys,
                        stale=[study.map_dir])  # fmt: skip

    scorecard = {
        "settings": s.as_dict(),
        "sae": sae_card,
        "lens": p.lens_scorecard(lens),
        "probe": p.probe_scorecard(study, probe),
        "map": mapped,
        "judge": judge,
    }
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
