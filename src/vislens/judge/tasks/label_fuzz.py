"""Label scoring by fuzzing: does a feature's label say *where* in an image it fires?

An image version of delphi's *fuzzing* scorer (``delphi/scorers/classifier/fuzz.py``).
delphi shows the explanation with text excerpts whose highlighted tokens are either the ones
that really activate the latent or decoys, and asks whether the highlighting is right; its
``active`` variant takes the decoys from the activating excerpts themselves. We do the same
with image patches. For each held-out top-activating image of a labelled feature (chosen as
detection chooses them, see ``label_score``), the judge sees the image twice, one request
each: once with a red box on the feature's top patch (a positive), and once with the box on a
decoy patch of the *same* image where the feature is 0 (a negative; the weakest patch when
none is 0). It says whether the boxed region matches the label. Detection asks whether a
label picks the right images; fuzzing asks whether it names the part of the image that
fires, which a label describing only the image's context would fail. The metrics are as
detection's: balanced accuracy, precision, recall and AUC of the stated confidence. The
outputs are ``label_scores_fuzzing.parquet`` and ``label_judgements_fuzzing.parquet`` (with
the boxed patch's row and column); docs/formats/judge-label-scores.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from vislens.errors import InputError
from vislens.judge.cache import JudgeCache
from vislens.judge.client import JudgeClient
from vislens.judge.config import JudgeConfig
from vislens.judge.messages import ChatRequest, user_message
from vislens.judge.runner import JudgeJob, RunSummary
from vislens.judge.tasks.label_score import (
    JUDGEMENT_COLUMNS,
    TILE,
    Detection,
    FeatureProbes,
    Probe,
    Scorer,
    judge_probes,
    select_probes,
)
from vislens.judge.templates import load_template
from vislens.study import Study

TASK = "label_fuzz"
FUZZ_SCORES_FILE = "label_scores_fuzzing.parquet"
FUZZ_JUDGEMENTS_FILE = "label_judgements_fuzzing.parquet"
FUZZ_JUDGEMENT_COLUMNS = (*JUDGEMENT_COLUMNS, "patch_row", "patch_col")
BOX_RGB = (255, 0, 0)
BOX_WIDTH = 3


@dataclass(frozen=True)
class BoxedProbe(Probe):
    """One image with a box on one patch; ``activating`` means the box is on the top patch."""

    patch_row: int = 0
    patch_col: int = 0
    grid_h: int = 1
    grid_w: int = 1


def _patch_grid(study: Study, sae: str) -> Any:  # -> CodesStore
    from vislens.sae.runs import open_codes

    try:
        codes = open_codes(study, sae)
    except InputError as e:
        raise InputError(
            f"{e} — fuzzing boxes patches, so it needs the code store; or use --scorer detection"
        ) from None
    info = codes.info
    if (
        info.n_tokens - info.n_prefix_tokens != info.grid_h * info.grid_w
        or info.grid_h * info.grid_w <= 1
    ):
        raise InputError(
            f"{codes.dir}: fuzzing needs a code for every patch, these codes hold '{info.tokens}' — "
            f"re-encode with `vislens sae encode STUDY --name {sae} --tokens all --overwrite`, "
            "or use --scorer detection"
        )
    return codes


def select_boxed_probes(
    study: Study,
    sae: str,
    *,
    n_positive: int = 5,
    seed: int = 0,
    features: list[int] | None = None,
    limit: int | None = None,
) -> list[FeatureProbes]:
    """Per labelled feature, each held-out top image boxed on its top patch and on a decoy.

    The decoy is drawn with ``numpy.random.default_rng([seed, feature, item_index])`` among
    the image's patches where the feature is 0; the order of a feature's probes is shuffled
    with ``default_rng([seed, feature])``.
    """
    from vislens.sae.inspect import feature_heatmap

    codes = _patch_grid(study, sae)
    gh, gw = codes.info.grid_h, codes.info.grid_w
    out = []
    for fp in select_probes(
        study, sae, n_positive=n_positive, n_negative=0, seed=seed, features=features, limit=limit
    ):
        probes: list[Probe] = []
        for pr in fp.probes:
            heat = feature_heatmap(codes, pr.item_index, fp.feature).reshape(-1)
            top = int(np.argmax(heat))
            zero = np.flatnonzero(heat == 0)
            rng = np.random.default_rng([seed, fp.feature, pr.item_index])
            if len(zero):
                decoy = int(rng.choice(zero))
            else:  # every patch fires: the weakest one other than the top
                decoy = int(np.argsort(heat, kind="stable")[0 if heat.argmin() != top else 1])
            for patch, activating in ((top, True), (decoy, False)):
                probes.append(
                    BoxedProbe(fp.feature, pr.item_index, pr.item_id, activating,
                               float(heat[patch]), patch // gw, patch % gw, gh, gw)
                )  # fmt: skip
        order = np.random.default_rng([seed, fp.feature]).permutation(len(probes))
        out.append(
            FeatureProbes(
                fp.feature, fp.label, fp.description, [probes[i] for i in order], "decoy_patch"
            )
        )
    return out


def draw_box(image: Image.Image, probe: BoxedProbe) -> Image.Image:
    """The image as a ``TILE``-pixel square with a red box around the probe's patch."""
    tile = image.convert("RGB").resize((TILE, TILE))
    ch, cw = TILE / probe.grid_h, TILE / probe.grid_w
    x0, y0 = round(probe.patch_col * cw), round(probe.patch_row * ch)
    x1, y1 = round((probe.patch_col + 1) * cw) - 1, round((probe.patch_row + 1) * ch) - 1
    ImageDraw.Draw(tile).rectangle((x0, y0, x1, y1), outline=BOX_RGB, width=BOX_WIDTH)
    return tile


def build_boxed_job(
    fp: FeatureProbes, probe: Probe, image: Image.Image, model: str, params: dict[str, Any]
) -> JudgeJob[Detection]:
    if not isinstance(probe, BoxedProbe):
        raise TypeError("fuzzing probes carry the boxed patch (BoxedProbe)")
    tpl = load_template(TASK)
    note = f'\nIts longer description: "{fp.description}"' if fp.description else ""
    system, user = tpl.render(label=fp.label, description_note=note)
    req = ChatRequest(
        model,
        [{"role": "system", "content": system}, user_message(user, [draw_box(image, probe)])],
        dict(params),
    )
    return JudgeJob(f"{probe.feature}:{probe.item_id}", req, Detection)


def _patch_columns(probe: Probe) -> dict[str, Any]:
    if not isinstance(probe, BoxedProbe):
        raise TypeError("fuzzing probes carry the boxed patch (BoxedProbe)")
    return {"patch_row": probe.patch_row, "patch_col": probe.patch_col}


FUZZING = Scorer(
    TASK, FUZZ_SCORES_FILE, FUZZ_JUDGEMENTS_FILE, FUZZ_JUDGEMENT_COLUMNS, build_boxed_job,
    _patch_columns,
)  # fmt: skip


def score_labels_fuzzing(
    study: Study,
    sae: str,
    *,
    client: JudgeClient,
    cfg: JudgeConfig | None = None,
    cache: JudgeCache | None = None,
    probes: list[FeatureProbes] | None = None,
    n_positive: int = 5,
    seed: int = 0,
    features: list[int] | None = None,
    limit: int | None = None,
    write: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame, RunSummary]:
    """Fuzzing scores of every labelled feature; (scores, judgements, run summary), written
    to ``label_scores_fuzzing.parquet`` and ``label_judgements_fuzzing.parquet`` when ``write``."""
    if probes is None:
        probes = select_boxed_probes(
            study, sae, n_positive=n_positive, seed=seed, features=features, limit=limit
        )
    return judge_probes(
        study, sae, probes, FUZZING, client=client, cfg=cfg, cache=cache, seed=seed, write=write
    )
