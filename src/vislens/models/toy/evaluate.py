"""Score a VLM on freshly generated grid-world scenes, one question per task per image.

Tasks and their ground truth come from ``tasks.py``; the answer is the model's greedy
generation, compared word by word (punctuation and spacing ignored). Cell questions here
always name an occupied cell ("colour/shape of a named cell").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from vislens.data.synthetic import WorldSpec, sample_scene
from vislens.models.toy.tasks import (
    QA,
    caption_question,
    cell_question,
    count_question,
    location_question,
    presence_question,
)

if TYPE_CHECKING:
    from vislens.models.vlm.base import VLMAdapter

EVAL_WORLD_SEED = 20_261_123
"""World seed of evaluation scenes; training uses another seed."""

EVAL_TASKS: tuple[str, ...] = ("presence", "cell_color", "cell_shape", "location", "count")
"""The questions ``vislens toy eval`` asks by default."""

ALL_TASKS: tuple[str, ...] = (*EVAL_TASKS, "caption")
"""Also ``caption`` ("describe the image.", scored as an exact match of the whole caption):
the task ``toy-mlp`` was trained on."""

GOALS: dict[str, float] = {
    "presence": 0.95,
    "cell_color": 0.90,
    "cell_shape": 0.90,
    "location": 0.90,
    "count": 0.90,
}
"""Accuracy the shipped QA toy (``toy``) is meant to reach on each task."""

_MAX_NEW_TOKENS = {
    "presence": 3, "cell_color": 3, "cell_shape": 3, "location": 8, "count": 3, "caption": 72,
}  # fmt: skip


def normalise(text: str) -> list[str]:
    """Lower-case words and numbers of an answer, punctuation dropped."""
    return re.findall(r"[a-z0-9]+", text.lower())


@dataclass
class ToyEvalReport:
    """Accuracy per task on ``n_images`` scenes of world seed ``seed``."""

    n_images: int
    seed: int
    accuracy: dict[str, float] = field(default_factory=dict)
    n_questions: dict[str, int] = field(default_factory=dict)
    examples: list[dict[str, str]] = field(default_factory=list)
    """A few (task, question, expected, answer) rows, wrong ones first."""

    def meets_goals(self) -> dict[str, bool]:
        """Goal met, for each task with a goal that was asked."""
        return {k: self.accuracy[k] >= v for k, v in GOALS.items() if k in self.accuracy}

    def to_json(self) -> dict[str, object]:
        return {
            "n_images": self.n_images,
            "seed": self.seed,
            "accuracy": self.accuracy,
            "n_questions": self.n_questions,
            "goals": GOALS,
            "meets_goals": self.meets_goals(),
            "examples": self.examples,
        }


def eval_questions(objects: Sequence, rng: np.random.Generator, task: str) -> QA | None:
    """The evaluation question of ``task`` for one scene (None if the task does not apply)."""
    if task == "presence":
        return presence_question(objects, rng)
    if task in ("cell_color", "cell_shape"):
        return cell_question(objects, rng, task, p_empty=0.0)
    if task == "location":
        return location_question(objects, rng)
    if task == "count":
        return count_question(objects, rng)
    if task == "caption":
        return caption_question(objects)
    raise ValueError(f"unknown toy eval task {task!r}; choose from {ALL_TASKS}")


def evaluate_toy(
    vlm: VLMAdapter,
    n_images: int = 1000,
    seed: int = EVAL_WORLD_SEED,
    *,
    tasks: Sequence[str] = EVAL_TASKS,
    batch_size: int = 50,
    show_progress: bool = True,
) -> ToyEvalReport:
    """Ask ``vlm`` one question per task about each of ``n_images`` fresh scenes."""
    from vislens.progress import track

    unknown = [t for t in tasks if t not in ALL_TASKS]
    if unknown:
        raise ValueError(f"unknown toy eval task(s) {unknown}; choose from {list(ALL_TASKS)}")
    spec = WorldSpec()
    report = ToyEvalReport(n_images=n_images, seed=seed)
    wrong: list[dict[str, str]] = []
    right: list[dict[str, str]] = []
    starts = range(0, n_images, batch_size)
    for start in track(starts, "toy eval") if show_progress else starts:
        scenes = [
            sample_scene(spec, seed, i) for i in range(start, min(start + batch_size, n_images))
        ]
        for task in tasks:
            items = []
            for j, (img, objs) in enumerate(scenes):
                qa = eval_questions(
                    objs, np.random.default_rng([seed, start + j, ALL_TASKS.index(task)]), task
                )
                if qa is not None:
                    items.append((img, qa))
            if not items:
                continue
            answers = vlm.generate(
                [im for im, _ in items],
                [qa.question for _, qa in items],
                max_new_tokens=_MAX_NEW_TOKENS[task],
            )
            n_ok = 0
            for (_, qa), ans in zip(items, answers, strict=True):
                ok = normalise(ans) == normalise(qa.answer)
                n_ok += ok
                row = {"task": task, "question": qa.question, "expected": qa.answer, "answer": ans}
                (right if ok else wrong).append(row)
            report.n_questions[task] = report.n_questions.get(task, 0) + len(items)
            report.accuracy[task] = report.accuracy.get(task, 0.0) + n_ok
    report.accuracy = {k: v / report.n_questions[k] for k, v in report.accuracy.items()}
    report.examples = (wrong[:10] + right[:5])[:15]
    return report
