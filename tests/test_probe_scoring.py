"""Answer parsing never guesses; confusion counts and rates match their definitions."""

from __future__ import annotations

import pandas as pd
import pytest

from vislens.probe.scoring import (
    location_metrics,
    mark_flips,
    parse_cell,
    parse_yes_no,
    presence_metrics,
    score_answer,
)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("yes", "yes"),
        ("Yes.", "yes"),
        ("no ; a yellow square in row 0", "no"),
        ("There is no green circle.", "no"),
        ("I think so, yes", "yes"),
        ("", None),
        ("an orange square in row 0, column", None),
        ("maybe yes, maybe no", None),
        ("yes and no", "yes"),  # the first word decides
        ("none", None),
        ("nowhere", None),
    ],
)
def test_parse_yes_no(text: str, want: str | None) -> None:
    assert parse_yes_no(text) == want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("row 3, column 7", (3, 7)),
        ("The green circle is in row 0, column 9.", (0, 9)),
        ("column 2, row 5", (5, 2)),
        ("(4, 1)", (4, 1)),
        ("4, 1", (4, 1)),
        ("row 3, column", None),
        ("row 10, column 2", None),  # outside the 10x10 grid
        ("row 1, column 2 or row 3, column 4", None),  # two cells: no guess
        ("somewhere on the left", None),
    ],
)
def test_parse_cell(text: str, want: tuple[int, int] | None) -> None:
    assert parse_cell(text, 10) == want


def test_outcomes() -> None:
    assert score_answer("presence", "yes", "yes", 10)["outcome"] == "TP"
    assert score_answer("presence", "yes", "no", 10)["outcome"] == "FN"
    assert score_answer("presence", "no", "yes", 10)["outcome"] == "FP"
    assert score_answer("presence", "no", "no", 10)["outcome"] == "TN"
    assert score_answer("presence", "no", "maybe", 10)["outcome"] == "unparseable"
    exact = score_answer("location", "row 3, column 7", "row 3, column 7", 10)
    near = score_answer("location", "row 3, column 7", "row 4, column 6", 10)
    far = score_answer("location", "row 3, column 7", "row 5, column 7", 10)
    assert (exact["outcome"], exact["correct"], exact["within_one"]) == ("exact", True, True)
    assert (near["outcome"], near["correct"], near["within_one"]) == ("near", False, True)
    assert (far["outcome"], far["correct"], far["within_one"]) == ("wrong", False, False)


def test_presence_metrics_by_hand() -> None:
    outcomes = ["TP"] * 6 + ["FN"] * 2 + ["FP"] * 3 + ["TN"] * 8 + ["unparseable"]
    m = presence_metrics(pd.DataFrame({"outcome": outcomes}))
    assert (m["tp"], m["fn"], m["fp"], m["tn"], m["n_unparseable"], m["n"]) == (6, 2, 3, 8, 1, 20)
    assert m["precision"] == pytest.approx(6 / 9)
    assert m["recall"] == pytest.approx(6 / 8)
    assert m["f1"] == pytest.approx(2 * (6 / 9) * (6 / 8) / (6 / 9 + 6 / 8))
    assert m["accuracy"] == pytest.approx(14 / 20)  # the unparseable answer counts as wrong
    none = presence_metrics(pd.DataFrame({"outcome": ["TN", "unparseable"]}))
    assert none["precision"] is None and none["recall"] is None and none["f1"] is None


def test_location_metrics() -> None:
    df = pd.DataFrame(
        {
            "outcome": ["exact", "near", "wrong", "unparseable"],
            "correct": [True, False, False, False],
            "within_one": [True, True, False, False],
        }
    )
    m = location_metrics(df)
    assert (m["accuracy"], m["accuracy_within_one"], m["n_unparseable"]) == (0.25, 0.5, 1)


def test_flips_ignore_unparseable_answers() -> None:
    df = pd.DataFrame(
        {
            "group_id": ["a", "a", "a", "b", "b", "c"],
            "paraphrase_id": ["p0", "p1", "p2", "p0", "p1", "p0"],
            "parsed": ["yes", "no", "", "yes", "", "no"],
            "parseable": [True, True, False, True, False, True],
        }
    )
    assert mark_flips(df).tolist() == [True, True, True, False, False, False]
