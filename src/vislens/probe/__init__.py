"""Visual-search probe (seed 004): questions on the grid world, answers scored, attention
to the grid, heads ranked TP vs FN, localisation against the world's evidence cells.

>>> from vislens.probe import run_probe
>>> summary = run_probe("my-study", model="toy", targets=["green circle"])  # doctest: +SKIP
>>> summary["presence"]["green circle"]["overall"]["recall"]  # doctest: +SKIP
"""

from __future__ import annotations

from vislens.probe.attention import read_case_npz, relative_attention, tokens_to_grid
from vislens.probe.features import head_features
from vislens.probe.questions import build_cases, load_world, resolve_targets
from vislens.probe.runner import run_probe
from vislens.probe.scoring import parse_cell, parse_yes_no
from vislens.probe.stats import localisation_table, rank_heads
from vislens.probe.templates import load_templates

__all__ = [
    "build_cases",
    "head_features",
    "load_templates",
    "load_world",
    "localisation_table",
    "parse_cell",
    "parse_yes_no",
    "rank_heads",
    "read_case_npz",
    "relative_attention",
    "resolve_targets",
    "run_probe",
    "tokens_to_grid",
]
