"""One contract for every judge client: the OpenAI-compatible one (over real HTTP), the local
backend with a scripted adapter, and the local backend running the toy VLM."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pydantic import BaseModel

from helpers_judge import FakeOpenAIServer, ScriptedAdapter, last_user_text, toy_adapter
from vislens.judge.cache import JudgeCache
from vislens.judge.client import ChatReply, JudgeClient
from vislens.judge.local_client import LocalJudge
from vislens.judge.messages import ChatRequest, user_message
from vislens.judge.openai_client import OpenAIJudge, RetryPolicy
from vislens.judge.runner import JudgeJob, RunSettings, judge_all


class Answer(BaseModel):
    answer: str


def _echo(body: dict[str, Any]) -> str:
    return json.dumps({"answer": f"{len(last_user_text(body))} chars"})


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return toy_adapter(tmp_path_factory.mktemp("toy"))


@pytest.fixture
def make_client(request: pytest.FixtureRequest) -> Iterator[Callable[[], JudgeClient]]:
    kind = request.param
    if kind == "openai":
        with FakeOpenAIServer(_echo) as srv:
            yield lambda: OpenAIJudge(
                "judge-m", base_url=srv.base_url, retry=RetryPolicy(2, 0.01, 0.02)
            )
    elif kind == "local-scripted":
        adapter = ScriptedAdapter()
        yield lambda: LocalJudge(adapter, "scripted")
    else:
        adapter = request.getfixturevalue("toy")
        yield lambda: LocalJudge(adapter, "toy", max_new_tokens=12)


CLIENTS = [
    pytest.param("openai", id="openai"),
    pytest.param("local-scripted", id="local-scripted"),
    pytest.param("local-toy", id="local-toy", marks=pytest.mark.slow),
]


def _request(model: str, text: str, n_images: int = 1) -> ChatRequest:
    images = [Image.new("RGB", (64, 48), c) for c in ("red", "blue", "green")[:n_images]]
    return ChatRequest(
        model,
        [{"role": "system", "content": "Be brief."}, user_message(text, images)],
        {"max_tokens": 16},
    )


def _jobs(client: JudgeClient, n: int) -> list[JudgeJob[Answer]]:
    return [JudgeJob(f"i{i}", _request(client.model, f"question {i}?"), Answer) for i in range(n)]


@pytest.mark.parametrize("make_client", CLIENTS, indirect=True)
def test_protocol_attributes(make_client: Callable[[], JudgeClient]) -> None:
    client = make_client()
    assert isinstance(client, JudgeClient)
    assert client.backend in ("openai", "local") and client.model and client.max_concurrency >= 1


@pytest.mark.parametrize("make_client", CLIENTS, indirect=True)
def test_complete_is_deterministic_with_images(make_client: Callable[[], JudgeClient]) -> None:
    client = make_client()

    async def twice() -> tuple[ChatReply, ChatReply]:
        req = _request(client.model, "what colour?", n_images=2)
        a = await client.complete(req)
        b = await client.complete(req)
        await client.aclose()
        return a, b

    a, b = asyncio.run(twice())
    assert isinstance(a.text, str) and a.text == b.text


@pytest.mark.parametrize("make_client", CLIENTS, indirect=True)
def test_second_run_is_served_from_cache(
    make_client: Callable[[], JudgeClient], tmp_path: Path
) -> None:
    client = make_client()
    cache = JudgeCache(tmp_path / "judge-cache.sqlite")
    settings = RunSettings(concurrency=4, max_reask=1)
    first, s1 = judge_all(client, _jobs(client, 3), cache=cache, settings=settings)
    second, s2 = judge_all(make_client(), _jobs(client, 3), cache=cache, settings=settings)
    assert s1.n_requests >= 3 and s2.n_requests == 0 and s2.n_cache_hits == s1.n_requests
    assert [(o.status, o.text) for o in first] == [(o.status, o.text) for o in second]
    for s in (s1, s2):  # every item is accounted for, by kind
        assert s.n_ok + s.n_parse_failures + s.n_refusals + s.n_errors == s.n_items == 3
        assert len(s.failures) == s.n_items - s.n_ok


def test_local_judge_tiles_images_and_caps_tokens() -> None:
    adapter = ScriptedAdapter()
    client = LocalJudge(adapter, "scripted", max_new_tokens=20)
    req = ChatRequest("scripted", [user_message("two views", [Image.new("RGB", (40, 40)), Image.new("RGB", (20, 40))])],
                      {"max_tokens": 500})  # fmt: skip
    asyncio.run(client.complete(req))
    ((size, prompt, n_new),) = adapter.calls
    assert size == (40 + 8 + 20, 40) and n_new == 20 and prompt.endswith("USER: two views")


def test_local_judge_fits_pinned_models() -> None:
    from vislens.judge.local_client import fit_image

    pinned = fit_image(Image.new("RGB", (100, 50), "white"), (280, 280))
    assert pinned.size == (280, 280) and pinned.getpixel((0, 0)) == (0, 0, 0)
    assert pinned.getpixel((140, 140)) == (255, 255, 255)
