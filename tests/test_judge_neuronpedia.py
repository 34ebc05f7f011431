"""Loading Neuronpedia explanation exports: every shape seed 002 accepts, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vislens.errors import InputError
from vislens.judge.neuronpedia import load_explanations


def rec(index: Any, description: Any, **extra: Any) -> dict[str, Any]:
    return {
        "modelId": "gemma-2-2b",
        "layer": "12-gemmascope-res-65k",
        "index": index,
        "description": description,
        "explanationModelName": "gpt-4o-mini",
        **extra,
    }


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_list_export_is_cleaned(tmp_path: Path) -> None:
    data = [rec("7", "  commas in lists \n"), rec("3", "code blocks"), rec("7", "a later duplicate"),
            rec("9", "   "), rec("10", None)]  # fmt: skip
    exp = load_explanations(write(tmp_path, data))
    assert [(f.feature_index, f.description) for f in exp.features] == [
        (7, "commas in lists"),
        (3, "code blocks"),
    ]
    assert exp.n_records == 5 and exp.n_duplicates == 1 and exp.n_empty == 2
    first = exp.features[0]
    assert first.feature_id == "gemma-2-2b/12-gemmascope-res-65k-7"
    assert first.explanation_model == "gpt-4o-mini" and first.layer == "12-gemmascope-res-65k"


@pytest.mark.parametrize("wrapper", ["features", "items", "data"])
def test_wrapped_lists(tmp_path: Path, wrapper: str) -> None:
    exp = load_explanations(write(tmp_path, {"meta": 1, wrapper: [rec("1", "x"), rec("2", "y")]}))
    assert [f.feature_index for f in exp.features] == [1, 2]


def test_dict_of_records_and_of_strings(tmp_path: Path) -> None:
    data = {"gemma-2-2b/12-res-5": {"description": "five"}, "feat-11": "eleven", "feat-12": ""}
    exp = load_explanations(write(tmp_path, data))
    assert [(f.feature_id, f.feature_index, f.description) for f in exp.features] == [
        ("gemma-2-2b/12-res-5", 5, "five"),
        ("feat-11", 11, "eleven"),
    ]
    assert exp.n_empty == 1


def test_alternative_description_key(tmp_path: Path) -> None:
    exp = load_explanations(
        write(tmp_path, [{"index": "4", "explanation": "tabs", "explanationModelName": "m"}])
    )
    assert exp.features[0].description == "tabs"


def test_wrong_top_level_type(tmp_path: Path) -> None:
    path = write(tmp_path, "just a string")
    with pytest.raises(InputError, match=r"export\.json: top level is a JSON str"):
        load_explanations(path)


def test_record_that_is_not_an_object_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"record 1 is a int"):
        load_explanations(write(tmp_path, [rec("1", "x"), 5]))


def test_missing_description_names_the_record(tmp_path: Path) -> None:
    data = [
        rec("1", "x"),
        {"modelId": "m", "layer": "l", "index": "2", "explanationModelName": "g"},
    ]
    with pytest.raises(InputError, match=r"record 1 has no 'description' field"):
        load_explanations(write(tmp_path, data))


def test_non_numeric_index_names_the_record(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"features\[1\] has index 'abc', which is not an integer"):
        load_explanations(write(tmp_path, {"features": [rec("1", "x"), rec("abc", "y")]}))


def test_non_text_description_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"record 0 has a list description"):
        load_explanations(write(tmp_path, [rec("1", ["x"])]))


def test_invalid_json_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[{", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.json: not valid JSON"):
        load_explanations(bad)
    with pytest.raises(InputError, match="no such file"):
        load_explanations(tmp_path / "missing.json")
