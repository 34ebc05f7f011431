"""The shipped ``toy-mlp`` as a LatentLens testbed (docs/toy.md, "LatentLens on the toy"):
on scenes of a world seed its training never saw, LatentLens' top-5 names the shape or
colour of most object cells at its best visual layer — above EmbeddingLens and LogitLens
there, and far above the control that pairs each patch with another object's words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vislens.data.config import ImagesConfig
from vislens.data.synthetic import generate_grid_world
from vislens.lens.run import build_study_bank, rates_study, run_neighbors
from vislens.models.config import ModelConfig
from vislens.models.toy import toy_model_dir
from vislens.models.toy.evaluate import EVAL_WORLD_SEED
from vislens.study import Study, StudyConfig

UNSEEN_SEED = 777001
N_SCENES = 200
"""With 200 scenes (about 690 object cells) the bank holds a wider sample of the words'
contexts than with 40, and the rates move less from one draw of scenes to the next
(docs/toy.md: at 40 scenes LatentLens' best rate ranged 60-88% over four seeds)."""


def test_toy_mlp_ships_beside_the_qa_toy() -> None:
    d = toy_model_dir("toy-mlp")
    assert d != toy_model_dir("toy")
    info = json.loads((d / "train.json").read_text(encoding="utf-8"))
    assert info["config"]["variant"] == "toy-mlp"
    seeds = {info["config"]["world_seed"], EVAL_WORLD_SEED}
    assert UNSEEN_SEED not in seeds, "the lens goal is measured on scenes training never saw"


@pytest.mark.slow
def test_latentlens_reads_the_toy_mlp(tmp_path: Path) -> None:
    generate_grid_world(tmp_path / "world", N_SCENES, seed=UNSEEN_SEED, show_progress=False)
    cfg = StudyConfig(
        images=ImagesConfig(source=str(tmp_path / "world")),
        model=ModelConfig(name_or_path="toy-mlp", device="cpu"),
    )
    study = Study.init(tmp_path / "study", cfg)
    build_study_bank(study, tmp_path / "world" / "captions.jsonl", progress=False)
    run_neighbors(study, progress=False)
    rates, _ = rates_study(study, source="truth", n_resamples=50)
    obj = rates[(rates["cells"] == "object") & (rates["contextual_layer"] == -1)]
    rate = obj.pivot(index="visual_layer", columns="method", values="rate")
    control = obj.pivot(index="visual_layer", columns="method", values="control_rate")
    assert sorted(rate.index) == [0, 1, 2, 4, 6, 7, 8]  # the bank's defaults for 8 blocks
    best = int(rate["latentlens"].idxmax())
    assert rate.loc[best, "latentlens"] >= 0.70, rate
    assert rate.loc[best, "latentlens"] > rate.loc[best, "embeddinglens"], rate
    assert rate.loc[best, "latentlens"] > rate.loc[best, "logitlens"], rate
    # The neighbours name *this* cell: with each patch scored against another object's
    # words the same top-5 scores far lower.
    assert rate.loc[best, "latentlens"] - control.loc[best, "latentlens"] >= 0.3, control
    # Above chance by more than either baseline is.
    lift = rate - control
    assert lift.loc[best, "latentlens"] > lift.loc[best, "embeddinglens"], lift
    assert lift.loc[best, "latentlens"] > lift.loc[best, "logitlens"], lift
