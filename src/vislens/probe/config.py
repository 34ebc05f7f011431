"""The ``[probe]`` section of study.toml: the defaults of ``vislens probe run``.

Every field can be overridden on the command line or as a ``run_probe`` keyword.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from vislens.config_base import Section


def _both_kinds() -> list[Literal["presence", "location"]]:
    return ["presence", "location"]


class ProbeConfig(Section):
    target: str = ""
    """The visual-search target, e.g. "green circle" (more with ``targets``)."""

    targets: list[str] = Field(default_factory=list)
    """More targets, each "colour shape"."""

    all_targets: bool = False
    """Probe every colour + shape pair that occurs in the annotations."""

    model: str = ""
    """The VLM to probe (hub id, directory or ``toy``); empty means ``[model] name_or_path``."""

    n_images: int | None = Field(default=100, ge=1)
    """Images per target (up to half of them holding it); None: every image."""

    templates: str = "prompts_v1"
    """Question template file: a shipped name or a path to a JSON file of the same layout."""

    paraphrases: list[str] = Field(default_factory=list)
    """Paraphrase ids to ask (e.g. ["p0", "l0"]); empty means all of the template file."""

    kinds: list[Literal["presence", "location"]] = Field(default_factory=_both_kinds)
    """Question kinds to ask."""

    attention: bool = True
    """Dump attention to the grid for every case (attn_cache/<case>.npz)."""

    query: Literal["last", "answer_start"] = "last"
    """Query position of the attention: the last prompt token, or the first answer token."""

    generic_prompt: str = ""
    """Baseline prompt of relative attention; empty means the template file's
    ("Write a general description of the image.")."""

    batch_size: int = Field(default=16, ge=1)
    """Cases per forward pass."""

    max_new_tokens_presence: int = Field(default=8, ge=1)
    """Longest presence answer, in tokens."""

    max_new_tokens_location: int = Field(default=24, ge=1)
    """Longest location answer, in tokens."""

    min_per_group: int = Field(default=5, ge=2)
    """Fewest TP and FN cases for which heads are ranked."""

    n_figures: int = Field(default=12, ge=0)
    """Cases to draw heatmaps for (TP and FN first)."""

    plot_layer: int | None = None
    """Layer whose head mean is drawn; None: the layer whose head mean localises best."""

    plot_heads: list[str] = Field(default_factory=list)
    """Heads to draw as "layer:head"; empty: the three best-ranked (or best-localising) heads."""
