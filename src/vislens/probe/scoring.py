"""Scoring the probe's answers: parsing, confusion counts, precision/recall/F1, location
accuracy and prompt sensitivity. Pure tables in, tables out: no model here.

Parsing never guesses. A presence answer is ``yes`` or ``no`` when its first word is one
of them, or when exactly one of the two words occurs in it; otherwise it is
*unparseable*. A location answer is parsed from ``row R ... column C`` (either order) or
a bare ``(R, C)`` / ``R, C`` pair, 0-based as the questions say; an index outside the
grid, or two different cells in one answer, is unparseable. Unparseable answers are
counted (``n_unparseable``) and never enter the confusion matrix; accuracy counts them
as wrong.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd

_WORDS = re.compile(r"[a-z0-9]+")
_ROW_COL = re.compile(r"\brow\s*(?:#|number)?\s*(\d+)\b.*?\bcol(?:umn)?\s*(?:#|number)?\s*(\d+)\b")
_COL_ROW = re.compile(r"\bcol(?:umn)?\s*(?:#|number)?\s*(\d+)\b.*?\brow\s*(?:#|number)?\s*(\d+)\b")
_PAIR = re.compile(r"^\W*\(?\s*(\d+)\s*,\s*(\d+)\s*\)?\W*$")

PRESENCE_OUTCOMES = ("TP", "FP", "TN", "FN", "unparseable")
LOCATION_OUTCOMES = ("exact", "near", "wrong", "unparseable")


def parse_yes_no(text: str) -> str | None:
    """``"yes"``, ``"no"`` or None (unparseable)."""
    words = _WORDS.findall(text.lower())
    if not words:
        return None
    if words[0] in ("yes", "no"):
        return words[0]
    found = {w for w in words if w in ("yes", "no")}
    return found.pop() if len(found) == 1 else None


def parse_cell(text: str, grid: int) -> tuple[int, int] | None:
    """``(row, col)`` named in an answer, or None (unparseable)."""
    low = text.lower()
    cells: set[tuple[int, int]] = set()
    for m in _ROW_COL.finditer(low):
        cells.add((int(m[1]), int(m[2])))
    if not cells:
        for m in _COL_ROW.finditer(low):
            cells.add((int(m[2]), int(m[1])))
    if not cells:
        pair = _PAIR.match(low)
        if pair:
            cells.add((int(pair[1]), int(pair[2])))
    if len(cells) != 1:
        return None
    r, c = cells.pop()
    return (r, c) if 0 <= r < grid and 0 <= c < grid else None


def score_answer(kind: str, expected: str, answer: str, grid: int) -> dict[str, Any]:
    """Parsed answer, correctness and outcome of one case."""
    if kind == "presence":
        parsed = parse_yes_no(answer)
        if parsed is None:
            outcome = "unparseable"
        elif expected == "yes":
            outcome = "TP" if parsed == "yes" else "FN"
        else:
            outcome = "FP" if parsed == "yes" else "TN"
        return {
            "parsed": parsed or "",
            "parsed_row": -1,
            "parsed_col": -1,
            "parseable": parsed is not None,
            "correct": parsed == expected,
            "within_one": parsed == expected,
            "outcome": outcome,
        }
    cell = parse_cell(answer, grid)
    truth = parse_cell(expected, grid)
    assert truth is not None, expected
    if cell is None:
        exact = near = False
        outcome = "unparseable"
    else:
        exact = cell == truth
        near = max(abs(cell[0] - truth[0]), abs(cell[1] - truth[1])) <= 1
        outcome = "exact" if exact else ("near" if near else "wrong")
    return {
        "parsed": "" if cell is None else f"row {cell[0]}, column {cell[1]}",
        "parsed_row": -1 if cell is None else cell[0],
        "parsed_col": -1 if cell is None else cell[1],
        "parseable": cell is not None,
        "correct": exact,
        "within_one": near,
        "outcome": outcome,
    }


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else num / den


def presence_metrics(df: pd.DataFrame) -> dict[str, Any]:
    """Confusion counts and rates of presence cases (None where a rate is undefined)."""
    counts = {k: int((df["outcome"] == k).sum()) for k in ("TP", "FP", "TN", "FN")}
    tp, fp, tn, fn = counts["TP"], counts["FP"], counts["TN"], counts["FN"]
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = (
        None
        if precision is None or recall is None or precision + recall == 0
        else 2 * precision * recall / (precision + recall)
    )
    n = len(df)
    return {
        "n": n,
        "n_unparseable": int((df["outcome"] == "unparseable").sum()),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": _ratio(tp + tn, n),
    }


def location_metrics(df: pd.DataFrame) -> dict[str, Any]:
    """Exact and within-one-cell accuracy of location cases (unparseable counted wrong)."""
    n = len(df)
    return {
        "n": n,
        "n_unparseable": int((df["outcome"] == "unparseable").sum()),
        "exact": int(df["correct"].sum()),
        "within_one": int(df["within_one"].sum()),
        "accuracy": _ratio(float(df["correct"].sum()), n),
        "accuracy_within_one": _ratio(float(df["within_one"].sum()), n),
    }


def metrics_for(kind: str, df: pd.DataFrame) -> dict[str, Any]:
    return presence_metrics(df) if kind == "presence" else location_metrics(df)


def mark_flips(per_case: pd.DataFrame) -> pd.Series:
    """True for cases whose question group (same image, target, kind) got different parsed
    answers across paraphrases (unparseable answers are left out: they are no answer)."""
    key = per_case["parsed"].where(per_case["parseable"])
    n_distinct = key.groupby(per_case["group_id"]).transform("nunique")
    return n_distinct > 1


SENSITIVITY_COLUMNS: tuple[str, ...] = (
    "target",
    "kind",
    "paraphrase_id",
    "template",
    "n",
    "n_unparseable",
    "accuracy",
    "accuracy_within_one",
    "precision",
    "recall",
    "f1",
    "tp",
    "fp",
    "tn",
    "fn",
    "accuracy_minus_mean",
    "n_flipping",
)


def prompt_sensitivity(per_case: pd.DataFrame, templates: dict[str, str]) -> pd.DataFrame:
    """One row per (target, kind, paraphrase): its metrics, its accuracy minus the mean over
    the paraphrases, and how many of its cases flip answer between paraphrases."""
    rows = []
    for (target, kind), sub in per_case.groupby(["target", "kind"], sort=False):
        accs = {}
        for pid, part in sub.groupby("paraphrase_id", sort=False):
            m = metrics_for(str(kind), part)
            accs[pid] = m["accuracy"]
            rows.append(
                {
                    "target": target,
                    "kind": kind,
                    "paraphrase_id": pid,
                    "template": templates.get(str(pid), ""),
                    "n": m["n"],
                    "n_unparseable": m["n_unparseable"],
                    "accuracy": m["accuracy"],
                    "accuracy_within_one": m.get("accuracy_within_one", m["accuracy"]),
                    "precision": m.get("precision"),
                    "recall": m.get("recall"),
                    "f1": m.get("f1"),
                    "tp": m.get("tp", -1),
                    "fp": m.get("fp", -1),
                    "tn": m.get("tn", -1),
                    "fn": m.get("fn", -1),
                    "n_flipping": int(part["flips"].sum()),
                }
            )
        vals = [a for a in accs.values() if a is not None]
        mean = sum(vals) / len(vals) if vals else math.nan
        for row in rows:
            if row["target"] == target and row["kind"] == kind:
                acc = row["accuracy"]
                row["accuracy_minus_mean"] = math.nan if acc is None else acc - mean
    return pd.DataFrame(rows, columns=list(SENSITIVITY_COLUMNS))


def sensitivity_summary(per_case: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per target and kind: accuracy per paraphrase, its spread (max - min) and standard
    deviation, and how many question groups flip answer between paraphrases."""
    out: dict[str, dict[str, Any]] = {}
    for (target, kind), sub in per_case.groupby(["target", "kind"], sort=False):
        accs = {
            str(pid): float(part["correct"].mean())
            for pid, part in sub.groupby("paraphrase_id", sort=False)
        }
        vals = list(accs.values())
        groups = sub.groupby("group_id")["flips"].any()
        mean = sum(vals) / len(vals)
        out.setdefault(str(target), {})[str(kind)] = {
            "accuracy_by_paraphrase": accs,
            "spread": max(vals) - min(vals),
            "std": math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals)),
            "n_groups": len(groups),
            "n_flipping_groups": int(groups.sum()),
            "flip_rate": float(groups.mean()) if len(groups) else 0.0,
        }
    return out
