"""Task kinds: what a value looks like for each kind of annotation task.

- ``binary`` (seed 002): a feature description, Related / Not related;
- ``patch`` (LatentLens human study, seed 000): the words that fit an image patch, each
  with its relation (concrete, abstract, global), or "none of these";
- ``rating``: a feature's top images and label — is the feature coherent, is the label
  right (yes / partly / no).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from vislens.errors import InputError

BINARY_LABELS = ("related", "not-related")
RELATIONS = ("concrete", "abstract", "global")
RATING_ANSWERS = ("yes", "partly", "no")
RATING_QUESTIONS = ("coherent", "label")

INSTRUCTIONS = {
    "binary": (
        "Read the feature description and answer the question for it alone: Related or "
        "Not related.",
        "Judge the description as written; do not guess what the model meant.",
        "Unsure or the description is empty or broken? Skip it, and say why in the comment.",
    ),
    "patch": (
        "Look at the red box on the image and in the zoomed crop beside it.",
        "Mark every candidate word that fits what is inside the box: concrete (the thing "
        "itself), abstract (a property or idea it shows) or global (the whole image rather "
        "than the box).",
        "If no word fits, choose None of these; when you have marked the words, press Next.",
    ),
    "rating": (
        "Look at the feature's top images (a heatmap shows where it fires) and its label.",
        "Coherent: do the images share one recognisable thing? Label: does the label name it?",
        "Answer yes, partly or no to both questions; the item is done when both are answered.",
    ),
}
"""What each kind's annotation page says before the first item, one sentence a line."""

MODE_QUESTIONS = {
    "alignment": "Is this feature related to AI alignment, safety, or ethical behavior?",
    "formatting": "Is this feature related to text formatting, structure, or presentation?",
}


def question_for_mode(mode: str) -> str:
    """Seed 002's question for a labelling mode; any other text is a custom topic."""
    return MODE_QUESTIONS.get(mode, f"Is this feature related to {mode}?")


@dataclass(frozen=True)
class Kind(ABC):
    """How one kind of task checks and interprets values."""

    name: str
    labels: tuple[str, ...] = field(default_factory=tuple)

    @abstractmethod
    def validate(self, value: Any, item: dict[str, Any], where: str) -> Any:
        """The value in canonical form, or an InputError naming ``where``."""

    @property
    def instructions(self) -> tuple[str, ...]:
        """What the annotator is told to do, one sentence a line (see ``INSTRUCTIONS``)."""
        return INSTRUCTIONS.get(self.name, ())

    def is_done(self, value: Any) -> bool:
        """Whether the item counts as annotated (for progress "n / N")."""
        return value is not None

    def advances(self, value: Any) -> bool:
        """Whether saving this value moves the annotator on to the next item."""
        return self.is_done(value)


class BinaryKind(Kind):
    def validate(self, value: Any, item: dict[str, Any], where: str) -> Any:
        labels = self.labels or BINARY_LABELS
        if value not in labels:
            raise InputError(f"{where}: label {value!r} is not one of {', '.join(labels)}")
        return value


def candidate_words(item: dict[str, Any]) -> list[str]:
    """The selectable words of a patch item (what LatentLens stores as ``word``)."""
    return [c["word"] for c in item.get("candidates_view", [])]


class PatchKind(Kind):
    def validate(self, value: Any, item: dict[str, Any], where: str) -> Any:
        if not isinstance(value, dict):
            raise InputError(
                f"{where}: a patch answer is an object with 'words' and 'none', got {value!r}"
            )
        words = value.get("words", [])
        none = bool(value.get("none", False))
        if not isinstance(words, list):
            raise InputError(f"{where}: 'words' must be a list of {{word, relation}}")
        allowed = set(candidate_words(item))
        out = []
        for w in words:
            if not isinstance(w, dict) or "word" not in w:
                raise InputError(f"{where}: each selected word is {{word, relation}}, got {w!r}")
            if w["word"] not in allowed:
                raise InputError(
                    f"{where}: word {w['word']!r} is not one of this instance's candidates"
                )
            if w.get("relation") not in RELATIONS:
                raise InputError(
                    f"{where}: relation {w.get('relation')!r} is not one of {', '.join(RELATIONS)}"
                )
            out.append({"word": w["word"], "relation": w["relation"]})
        if none and out:
            raise InputError(f"{where}: 'none of these' cannot come with selected words")
        return {"words": out, "none": none}

    def is_done(self, value: Any) -> bool:
        return isinstance(value, dict) and (bool(value.get("words")) or bool(value.get("none")))

    def advances(self, value: Any) -> bool:
        # Picking words is several clicks; only "none of these" finishes the item by itself.
        return isinstance(value, dict) and bool(value.get("none"))


class RatingKind(Kind):
    def validate(self, value: Any, item: dict[str, Any], where: str) -> Any:
        if not isinstance(value, dict) or not value:
            raise InputError(
                f"{where}: a rating is an object like {{'coherent': 'yes', 'label': 'partly'}}"
            )
        for key, answer in value.items():
            if key not in RATING_QUESTIONS:
                raise InputError(
                    f"{where}: rating question {key!r} is not one of {', '.join(RATING_QUESTIONS)}"
                )
            if answer not in RATING_ANSWERS:
                raise InputError(
                    f"{where}: answer {answer!r} to {key!r} is not one of {', '.join(RATING_ANSWERS)}"
                )
        return {k: value[k] for k in RATING_QUESTIONS if k in value}

    def is_done(self, value: Any) -> bool:
        return isinstance(value, dict) and all(k in value for k in RATING_QUESTIONS)


def kind_of(name: str, labels: list[Any] | tuple[Any, ...] = ()) -> Kind:
    """The Kind object for a task's ``kind`` column."""
    if name == "binary":
        return BinaryKind("binary", tuple(labels) or BINARY_LABELS)
    if name == "patch":
        return PatchKind("patch", RELATIONS)
    if name == "rating":
        return RatingKind("rating", RATING_ANSWERS)
    raise InputError(f"unknown task kind {name!r} (known: binary, patch, rating)")
