"""Tolerant answer parsing: fences, prose around JSON, braces in strings, refusals."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from vislens.judge.parsing import looks_like_refusal, parse_answer
from vislens.judge.tasks.classify import ClassifyAnswer


class Answer(BaseModel):
    label: str
    score: float


def test_plain_json() -> None:
    p = parse_answer('{"label": "cat", "score": 0.5}', Answer)
    assert p.value == Answer(label="cat", score=0.5) and p.error is None


def test_fenced_json_with_prose() -> None:
    text = 'Sure! Here it is:\n```json\n{"label": "dog", "score": 1}\n```\nHope that helps.'
    assert parse_answer(text, Answer).value == Answer(label="dog", score=1.0)


def test_leading_prose_and_braces_inside_strings() -> None:
    text = 'I think {maybe} this: {"label": "a } tricky { one", "score": 0.25} done'
    assert parse_answer(text, Answer).value == Answer(label="a } tricky { one", score=0.25)


def test_first_object_that_validates_wins() -> None:
    text = '{"note": "not it"} and then {"label": "x", "score": 0}'
    assert parse_answer(text, Answer).value == Answer(label="x", score=0.0)


def test_garbage_gives_a_reason_not_a_default() -> None:
    p = parse_answer("the feature is about cats", Answer)
    assert p.value is None and p.error is not None and "no JSON" in p.error


def test_schema_mismatch_names_the_field() -> None:
    p = parse_answer('{"label": "x"}', Answer)
    assert p.value is None and p.error is not None and "score" in p.error


def test_truncated_json_is_a_parse_failure() -> None:
    p = parse_answer('{"label": "x", "score": ', Answer)
    assert p.value is None and p.error is not None


def test_classify_labels_are_normalised() -> None:
    for raw, want in [
        ("Related", "related"),
        ("not related", "not-related"),
        ("NOT_RELATED", "not-related"),
    ]:
        assert parse_answer(json.dumps({"label": raw}), ClassifyAnswer).value == ClassifyAnswer(
            label=want
        )
    assert parse_answer('{"label": "maybe"}', ClassifyAnswer).value is None


def test_refusal_openings() -> None:
    assert looks_like_refusal("I'm sorry, but I can't help with that.")
    assert looks_like_refusal("I cannot classify this image.")
    assert not looks_like_refusal('{"label": "related"}')


_text = st.text(
    alphabet=st.characters(blacklist_characters="{}`", blacklist_categories=("Cs",)), max_size=40
)


@given(
    prefix=_text,
    suffix=_text,
    label=st.text(max_size=20),
    score=st.floats(allow_nan=False, allow_infinity=False),
    fenced=st.booleans(),
)
def test_any_valid_object_is_found_in_prose(
    prefix: str, suffix: str, label: str, score: float, fenced: bool
) -> None:
    obj = json.dumps({"label": label, "score": score})
    body = f"```json\n{obj}\n```" if fenced else obj
    p = parse_answer(f"{prefix}{body}{suffix}", Answer)
    assert p.value == Answer(label=label, score=score)


_words = st.lists(st.text(alphabet="abcdefghij", min_size=1, max_size=8), min_size=1, max_size=8)


@given(words=_words, data=st.data())
def test_full_word_returns_a_caption_word_containing_the_token(
    words: list[str], data: st.DataObject
) -> None:
    from vislens.judge.tasks.latentlens import full_word

    caption = " ".join(words)
    i = data.draw(st.integers(0, len(words) - 1))
    cut = data.draw(st.integers(1, len(words[i])))
    token = " " + words[i][:cut]
    got = full_word(token, caption, i)
    assert got in words and got.startswith(words[i][:cut])


@given(
    params=st.dictionaries(
        st.sampled_from(["temperature", "max_tokens", "seed", "top_p"]), st.integers(0, 9)
    )
)
def test_cache_key_ignores_parameter_order(params: dict[str, int]) -> None:
    from vislens.judge.messages import ChatRequest

    reordered = dict(reversed(list(params.items())))
    msgs = [{"role": "user", "content": "x"}]
    assert ChatRequest("m", msgs, params).key() == ChatRequest("m", msgs, reordered).key()
