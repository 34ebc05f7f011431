"""Versioned prompt templates: ``templates/<task>_v<N>.txt``, the text outside the code.

A template file has a ``[system]`` and a ``[user]`` section; placeholders are ``$name``
(``string.Template``), so JSON examples in a prompt need no escaping. Changing a prompt
means adding ``<task>_v<N+1>.txt``: the old version stays loadable, every output records
the version it used, and because the prompt text is part of each request, the cache never
mixes answers to different prompts.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from importlib import resources

from vislens.errors import InputError

_NAME = re.compile(r"^(?P<task>[a-z_]+)_v(?P<version>\d+)\.txt$")
_SECTION = re.compile(r"^\[(system|user)\]\s*$", re.MULTILINE)


@dataclass(frozen=True)
class PromptTemplate:
    """One version of one task's prompt."""

    task: str
    version: int
    system: str
    user: str

    @property
    def id(self) -> str:
        """``<task>/v<N>``, recorded in outputs and summaries."""
        return f"{self.task}/v{self.version}"

    def render(self, **values: object) -> tuple[str, str]:
        """(system, user) with every ``$name`` filled; a missing value is a KeyError."""
        sub = {k: str(v) for k, v in values.items()}
        return (
            string.Template(self.system).substitute(sub),
            string.Template(self.user).substitute(sub),
        )


def _versions(task: str) -> dict[int, str]:
    found: dict[int, str] = {}
    for entry in resources.files("vislens.judge").joinpath("templates").iterdir():
        m = _NAME.match(entry.name)
        if m and m["task"] == task:
            found[int(m["version"])] = entry.name
    return found


def load_template(task: str, version: int | None = None) -> PromptTemplate:
    """The template of ``task`` at ``version`` (default: the newest)."""
    versions = _versions(task)
    if not versions:
        raise InputError(f"no prompt template for task '{task}' (expected templates/{task}_v1.txt)")
    v = max(versions) if version is None else version
    if v not in versions:
        raise InputError(
            f"task '{task}' has no prompt version {v}; available: {', '.join(map(str, sorted(versions)))}"
        )
    text = resources.files("vislens.judge").joinpath("templates", versions[v]).read_text("utf-8")
    parts = _SECTION.split(text)
    sections = {parts[i]: parts[i + 1].strip() + "\n" for i in range(1, len(parts) - 1, 2)}
    if "user" not in sections:
        raise InputError(f"templates/{versions[v]}: no [user] section")
    return PromptTemplate(task, v, sections.get("system", "").strip(), sections["user"].strip())
