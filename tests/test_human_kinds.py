"""Task kinds: what counts as a valid answer, a finished item, and a move to the next one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vislens.errors import InputError
from vislens.human.kinds import kind_of, question_for_mode
from vislens.human.seed002 import load_neuronpedia_export

ITEM = {"candidates_view": [{"word": "a red circle", "token": "red", "sentence": "a red circle"}]}


def test_patch_answers() -> None:
    k = kind_of("patch")
    ok = k.validate({"words": [{"word": "a red circle", "relation": "global"}]}, ITEM, "here")
    assert ok == {"words": [{"word": "a red circle", "relation": "global"}], "none": False}
    assert k.is_done(ok) and not k.advances(ok)
    none = k.validate({"none": True}, ITEM, "here")
    assert k.is_done(none) and k.advances(none)
    assert not k.is_done({"words": [], "none": False})
    for bad, msg in [
        ({"words": [{"word": "blue", "relation": "concrete"}]}, "not one of this instance"),
        ({"words": [{"word": "a red circle", "relation": "vague"}]}, "relation 'vague'"),
        (
            {"words": [{"word": "a red circle", "relation": "global"}], "none": True},
            "cannot come with",
        ),
        ("red", "is an object"),
    ]:
        with pytest.raises(InputError, match=msg):
            k.validate(bad, ITEM, "here")


def test_rating_and_binary_answers() -> None:
    r = kind_of("rating")
    half = r.validate({"coherent": "partly"}, {}, "x")
    assert not r.is_done(half) and not r.advances(half)
    assert r.is_done(r.validate({"coherent": "no", "label": "yes"}, {}, "x"))
    with pytest.raises(InputError, match="answer 'maybe'"):
        r.validate({"label": "maybe"}, {}, "x")
    with pytest.raises(InputError, match="question 'nice'"):
        r.validate({"nice": "yes"}, {}, "x")
    b = kind_of("binary", ["related", "not-related"])
    assert b.validate("related", {}, "x") == "related"
    with pytest.raises(InputError, match="x: label 'Related'"):
        b.validate("Related", {}, "x")
    with pytest.raises(InputError, match="unknown task kind"):
        kind_of("essay")
    assert question_for_mode("alignment").startswith("Is this feature related to AI alignment")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "record 0 is int"),
        ('[{"index": 1, "text": "x"}]', "no 'description' field"),
        ("[]", "holds no features"),
        ('"just a string"', "expected a JSON list"),
    ],
)
def test_malformed_neuronpedia_exports(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "export.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as err:
        load_neuronpedia_export(path)
    assert str(path) in str(err.value)


def test_export_shapes_seed002_accepts(tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    path.write_text(
        json.dumps(
            {"features": [{"feature_id": "12-gemmascope-res-65k-17", "explanation": "commas"}]}
        )
    )
    df = load_neuronpedia_export(path)
    assert df.loc[0, "description"] == "commas" and df.loc[0, "feature_index"] == 17
    path.write_text(json.dumps({"res-5": "quotes", "res-9": {"description": "dots", "index": 9}}))
    df = load_neuronpedia_export(path)
    assert df["description"].tolist() == ["quotes", "dots"] and df["feature_index"].tolist() == [
        5,
        9,
    ]
