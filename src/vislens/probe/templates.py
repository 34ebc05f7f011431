"""Versioned question templates: several paraphrases per question kind, for prompt sensitivity.

A template file (``templates/prompts_v1.json``, see docs/formats/probe-templates.md) holds
the generic prompt of the relative-attention baseline and, per question kind, a list of
``{"id", "template", "note"}``. Templates are ``str.format`` strings over ``color``,
``shape``, ``article`` (``a`` / ``an`` for the colour), ``target`` (``"green circle"``),
``grid`` (cells per side) and ``last`` (``grid - 1``). The version string goes into every
answer's cache key and every attention file, so a changed template is never mistaken for
an old one.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path

from vislens.errors import ConfigError

TEMPLATES_DIR = Path(__file__).parent / "templates"
DEFAULT_TEMPLATES = "prompts_v1"
KINDS: tuple[str, ...] = ("presence", "location")
FIELDS: frozenset[str] = frozenset({"color", "shape", "article", "target", "grid", "last"})
MIN_PARAPHRASES = 5


@dataclass(frozen=True)
class Paraphrase:
    """One phrasing of one question kind."""

    id: str
    template: str
    note: str = ""

    def render(self, color: str, shape: str, grid: int) -> str:
        article = "an" if color[:1].lower() in "aeiou" else "a"
        return self.template.format(
            color=color,
            shape=shape,
            article=article,
            target=f"{color} {shape}",
            grid=grid,
            last=grid - 1,
        )


@dataclass(frozen=True)
class PromptTemplates:
    """A loaded template file."""

    version: str
    generic_prompt: str
    kinds: dict[str, tuple[Paraphrase, ...]]

    def paraphrases(self, kind: str, ids: list[str] | None = None) -> tuple[Paraphrase, ...]:
        """The paraphrases of ``kind``, all or those named in ``ids`` (in file order)."""
        allp = self.kinds[kind]
        return allp if not ids else tuple(p for p in allp if p.id in ids)

    @property
    def ids(self) -> list[str]:
        return [p.id for kind in KINDS for p in self.kinds[kind]]


def load_templates(name_or_path: str | Path = DEFAULT_TEMPLATES) -> PromptTemplates:
    """A template file by shipped name (``prompts_v1``) or path; errors name the file and key."""
    path = Path(name_or_path)
    if not path.suffix:
        path = TEMPLATES_DIR / f"{name_or_path}.json"
    if not path.is_file():
        shipped = sorted(p.stem for p in TEMPLATES_DIR.glob("*.json"))
        raise ConfigError(f"{path}: no such template file (shipped: {shipped})")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from None
    for key in ("version", "generic_prompt", *KINDS):
        if key not in raw:
            raise ConfigError(f"{path}: missing key '{key}'")
    kinds: dict[str, tuple[Paraphrase, ...]] = {}
    for kind in KINDS:
        items = raw[kind]
        if not isinstance(items, list) or len(items) < MIN_PARAPHRASES:
            raise ConfigError(
                f"{path}: '{kind}' needs a list of at least {MIN_PARAPHRASES} paraphrases"
            )
        seen: set[str] = set()
        out = []
        for j, item in enumerate(items):
            if not isinstance(item, dict) or "id" not in item or "template" not in item:
                raise ConfigError(f"{path}: {kind}[{j}] needs 'id' and 'template'")
            if item["id"] in seen:
                raise ConfigError(f"{path}: {kind}[{j}]: duplicate id {item['id']!r}")
            seen.add(item["id"])
            names = {f for _, f, _, _ in string.Formatter().parse(item["template"]) if f}
            if names - FIELDS:
                raise ConfigError(
                    f"{path}: {kind}[{j}] uses unknown fields {sorted(names - FIELDS)}; "
                    f"allowed: {sorted(FIELDS)}"
                )
            if not {"color", "shape"} <= names and "target" not in names:
                raise ConfigError(f"{path}: {kind}[{j}] must name the target ({{color}} {{shape}})")
            out.append(
                Paraphrase(str(item["id"]), str(item["template"]), str(item.get("note", "")))
            )
        kinds[kind] = tuple(out)
    return PromptTemplates(str(raw["version"]), str(raw["generic_prompt"]), kinds)
