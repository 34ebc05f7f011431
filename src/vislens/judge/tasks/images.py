"""Image classification with rationale (seed 003): prediction, score and rationale per image.

Reads a table of images (``metadata.csv`` of a map cache, or any CSV/Parquet with a file
name column and a ground-truth label column) and writes seed 003's two CSVs beside it:
``mis_<model>.csv`` (prediction differs from the ground truth) and ``correct_<model>.csv``.
Each row keeps the table's columns and adds ``predicted_label`` and ``rationale``, a JSON
string ``{"prediction", "score", "rationale"}`` that the explorer shows. Images the judge
could not classify go to neither file; the summary names them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field, field_validator

from vislens.errors import InputError
from vislens.io import atomic_path
from vislens.judge.cache import JudgeCache
from vislens.judge.client import JudgeClient
from vislens.judge.config import JudgeConfig
from vislens.judge.messages import ChatRequest, user_message
from vislens.judge.runner import JudgeJob, RunSummary, judge_all
from vislens.judge.tasks.common import model_slug, write_summary
from vislens.judge.templates import load_template

TASK = "classify_image"
ADDED_COLUMNS = ("predicted_label", "rationale")
RATIONALE_KEYS = ("prediction", "score", "rationale")


class ImageAnswer(BaseModel):
    """The judge's answer for one image; ``prediction`` must be one of ``allowed``."""

    allowed: ClassVar[tuple[str, ...]] = ()

    prediction: str
    score: float = Field(ge=0.0, le=1.0)
    rationale: str

    @field_validator("prediction")
    @classmethod
    def _one_of_labels(cls, v: str) -> str:
        by_lower = {a.lower(): a for a in cls.allowed}
        hit = by_lower.get(v.strip().lower())
        if hit is None:
            raise ValueError(f"'{v}' is not one of the labels: {', '.join(cls.allowed)}")
        return hit


def answer_schema(labels: list[str]) -> type[ImageAnswer]:
    """An ``ImageAnswer`` that accepts exactly ``labels`` (case-insensitively)."""
    return type("ImageAnswerForLabels", (ImageAnswer,), {"allowed": tuple(labels)})


def read_table(path: Path) -> Any:
    """The image table (CSV or Parquet) as a DataFrame; an unreadable file is an InputError."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file — pass the metadata.csv of the images to classify")
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except Exception as e:  # pandas/pyarrow raise many types for a damaged or empty file
        raise InputError(
            f"{path}: not a readable {'Parquet' if path.suffix.lower() == '.parquet' else 'CSV'} "
            f"table ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'empty'})"
        ) from None


def load_table(path: Path, *, file_column: str, label_column: str) -> Any:
    """``read_table`` plus the check that both columns exist (names the missing one)."""
    df = read_table(path)
    for col in (file_column, label_column):
        if col not in df.columns:
            raise InputError(
                f"{path}: no column '{col}' (columns: {', '.join(map(str, df.columns))}) — "
                f"name the right one with --file-column / --label-column"
            )
    return df


def load_image(path: Path, max_side: int) -> Any:
    """The image at ``path``, shrunk so its longer side is at most ``max_side`` pixels."""
    from PIL import Image

    with Image.open(path) as raw:
        im = raw.convert("RGB")
    if max(im.size) > max_side:
        im.thumbnail((max_side, max_side))
    return im


@dataclass
class ImagesResult:
    n_mis: int
    n_correct: int
    summary: RunSummary
    mis_path: Path | None
    correct_path: Path | None
    summary_path: Path | None = None


def classify_images(
    table_path: Path,
    *,
    client: JudgeClient,
    image_dir: Path | None = None,
    labels: list[str] | None = None,
    label_column: str = "ground_truth_word_label",
    file_column: str = "file_name",
    cfg: JudgeConfig | None = None,
    cache: JudgeCache | None = None,
    out_dir: Path | None = None,
    limit: int | None = None,
    max_side: int = 768,
) -> ImagesResult:
    """Classify every image of the table; write ``mis_/correct_<model>.csv`` into ``out_dir``."""
    from vislens.judge.backends import request_params, run_settings

    cfg = cfg or JudgeConfig(model=client.model)
    table_path = Path(table_path)
    df = load_table(table_path, file_column=file_column, label_column=label_column)
    if limit is not None:
        df = df.head(limit)
    labels = labels or sorted({str(v) for v in df[label_column].dropna()})
    if len(labels) < 2:
        raise InputError(f"{table_path}: need at least two labels to choose from (got {labels})")
    image_dir = Path(image_dir) if image_dir is not None else table_path.parent
    schema = answer_schema(labels)
    tpl = load_template(TASK)
    params = request_params(cfg)
    system, user = tpl.render(labels="\n".join(f"- {lab}" for lab in labels))

    def build(img_path: Path) -> ChatRequest:
        image = load_image(img_path, max_side)
        messages = [{"role": "system", "content": system}, user_message(user, [image])]
        return ChatRequest(client.model, messages, dict(params))

    jobs: list[JudgeJob[ImageAnswer]] = []
    for i, row in enumerate(df.itertuples(index=False)):
        name = str(getattr(row, file_column))
        img_path = image_dir / name
        if not img_path.is_file():
            raise InputError(
                f"{table_path}: row {i} names image '{name}', not found in {image_dir} — pass --image-dir"
            )
        jobs.append(JudgeJob(name, partial(build, img_path), schema))
    settings = run_settings(cfg, task=TASK, template=tpl.id, progress="classifying images")
    outcomes, summary = judge_all(client, jobs, cache=cache, settings=settings)

    mis_rows: list[dict[str, Any]] = []
    correct_rows: list[dict[str, Any]] = []
    for (_, row), o in zip(df.iterrows(), outcomes, strict=True):
        if o.value is None:
            continue
        rec = row.to_dict()
        rec["predicted_label"] = o.value.prediction
        rec["rationale"] = json.dumps(
            {
                "prediction": o.value.prediction,
                "score": o.value.score,
                "rationale": o.value.rationale,
            },
            ensure_ascii=False,
        )
        (correct_rows if o.value.prediction == str(row[label_column]) else mis_rows).append(rec)

    mis_path = correct_path = written = None
    if out_dir is not None:
        import pandas as pd

        cols = [*map(str, df.columns), *ADDED_COLUMNS]
        mis_path = Path(out_dir) / f"mis_{model_slug(client.model)}.csv"
        correct_path = Path(out_dir) / f"correct_{model_slug(client.model)}.csv"
        for path, rows in ((mis_path, mis_rows), (correct_path, correct_rows)):
            with atomic_path(path) as tmp:
                pd.DataFrame(rows, columns=cols).to_csv(tmp, index=False)
        written = write_summary(
            Path(out_dir) / f"judge_images_{model_slug(client.model)}.json", summary
        )
    return ImagesResult(len(mis_rows), len(correct_rows), summary, mis_path, correct_path, written)
