"""The OpenAI-compatible client against a scripted local server: real HTTP, real SDK.

Covers what hosted endpoints do to a long run: 429 with Retry-After, 5xx, a hang past the
timeout, fenced or invalid JSON, refusals, and errors that must not be retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from helpers_judge import FakeOpenAIServer, Scripted
from vislens.judge import openai_client
from vislens.judge.messages import ChatRequest, user_message
from vislens.judge.openai_client import OpenAIJudge, RetryPolicy, parse_retry_after
from vislens.judge.runner import JudgeJob, RunSettings, judge_all

FAST = RetryPolicy(max_retries=3, backoff_initial_s=0.01, backoff_max_s=0.05, max_retry_after_s=30)


class Answer(BaseModel):
    answer: str


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every backoff the client asks for, and wait only a millisecond for it."""
    asked: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float) -> None:
        asked.append(delay)
        await real_sleep(0.001)

    monkeypatch.setattr(openai_client.asyncio, "sleep", fake_sleep)
    return asked


def make_client(
    server: FakeOpenAIServer, *, timeout_s: float = 5.0, retry: RetryPolicy = FAST
) -> OpenAIJudge:
    return OpenAIJudge("judge-m", base_url=server.base_url, timeout_s=timeout_s, retry=retry)


def jobs(n: int) -> list[JudgeJob[Answer]]:
    return [
        JudgeJob(f"item{i}", ChatRequest("judge-m", [user_message(f"item {i}")]), Answer)
        for i in range(n)
    ]


def run(client: OpenAIJudge, n: int = 1, **kw: object):  # type: ignore[no-untyped-def]
    return judge_all(client, jobs(n), settings=RunSettings(concurrency=1, **kw))  # type: ignore[arg-type]


def test_good_answer(server: FakeOpenAIServer) -> None:
    outs, summary = run(make_client(server), 3)
    assert [o.status for o in outs] == ["ok"] * 3
    assert summary.n_ok == 3 and summary.n_requests == 3 and summary.n_retries == 0
    assert summary.prompt_tokens > 0 and summary.completion_tokens > 0


def test_fenced_json_is_accepted_without_reask(server: FakeOpenAIServer) -> None:
    server.script = [Scripted(text='Here you go:\n```json\n{"answer": "fenced"}\n```')]
    outs, summary = run(make_client(server))
    assert outs[0].value == Answer(answer="fenced")
    assert summary.n_reasks == 0 and len(server.received) == 1


def test_garbage_then_good_reasks_once(server: FakeOpenAIServer) -> None:
    server.script = [
        Scripted(text="The answer is obviously yes."),
        Scripted(text='{"answer": "second"}'),
    ]
    outs, summary = run(make_client(server))
    assert outs[0].status == "ok" and outs[0].value == Answer(answer="second")
    assert summary.n_reasks == 1 and summary.n_parse_failures == 0
    reask = server.received[1]["messages"]
    assert reask[-2] == {"role": "assistant", "content": "The answer is obviously yes."}
    assert "could not be used" in reask[-1]["content"][0]["text"]


def test_reask_is_bounded_and_failure_counted(server: FakeOpenAIServer) -> None:
    server.script = [Scripted(text="nope")] * 3
    outs, summary = run(make_client(server), max_reask=2)
    assert outs[0].status == "parse_failure" and outs[0].value is None
    assert len(server.received) == 3  # the first ask and two re-asks, then it stops
    assert summary.n_parse_failures == 1 and summary.n_ok == 0
    assert summary.failures[0].item_id == "item0" and "JSON" in summary.failures[0].reason


def test_429_retry_after_is_honoured(server: FakeOpenAIServer, sleeps: list[float]) -> None:
    server.script = [Scripted(status=429, headers={"retry-after": "7"})]
    outs, summary = run(make_client(server))
    assert outs[0].status == "ok" and summary.n_retries == 1
    assert sleeps == [7.0]  # the server's wish, not our own backoff
    assert len(server.received) == 2


def test_retry_after_ms_and_dates_are_read() -> None:
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({}) is None


def test_retry_after_above_limit_fails_fast(server: FakeOpenAIServer, sleeps: list[float]) -> None:
    server.script = [Scripted(status=429, headers={"retry-after": "3600"})]
    outs, summary = run(make_client(server))
    assert outs[0].status == "error" and "3600" in (outs[0].reason or "")
    assert summary.n_errors == 1 and sleeps == [] and len(server.received) == 1


def test_500_then_success_backs_off(server: FakeOpenAIServer, sleeps: list[float]) -> None:
    server.script = [Scripted(status=500), Scripted(status=503)]
    outs, summary = run(make_client(server))
    assert outs[0].status == "ok" and summary.n_retries == 2
    assert len(sleeps) == 2 and all(0 < s <= FAST.backoff_max_s for s in sleeps)


def test_hang_past_timeout_is_retried(server: FakeOpenAIServer) -> None:
    server.script = [Scripted(delay_s=4.0)]
    outs, summary = run(make_client(server, timeout_s=1.0))
    assert outs[0].status == "ok" and summary.n_retries == 1
    assert len(server.received) == 2


def test_retries_run_out_into_a_counted_error(
    server: FakeOpenAIServer, sleeps: list[float]
) -> None:
    server.script = [Scripted(status=500)] * (1 + FAST.max_retries)
    outs, summary = run(make_client(server), 2)
    assert [o.status for o in outs] == ["error", "ok"]
    assert summary.n_errors == 1 and summary.n_ok == 1
    assert len(sleeps) == FAST.max_retries and summary.n_retries == FAST.max_retries
    assert "gave up after 3 retries" in (outs[0].reason or "")


def test_client_errors_are_not_retried(server: FakeOpenAIServer, sleeps: list[float]) -> None:
    server.script = [Scripted(status=400)]
    outs, _ = run(make_client(server))
    assert outs[0].status == "error" and "400" in (outs[0].reason or "")
    assert len(server.received) == 1 and sleeps == []


def test_explicit_refusal_is_counted(server: FakeOpenAIServer) -> None:
    server.script = [Scripted(text="", refusal="I can't help with that.")]
    outs, summary = run(make_client(server))
    assert outs[0].status == "refusal" and summary.n_refusals == 1 and summary.n_reasks == 0


def test_refusal_in_text_is_counted_not_reasked(server: FakeOpenAIServer) -> None:
    server.script = [Scripted(text="I'm sorry, but I cannot judge this image.")]
    outs, summary = run(make_client(server))
    assert outs[0].status == "refusal" and summary.n_refusals == 1
    assert len(server.received) == 1


def test_concurrency_is_bounded(server: FakeOpenAIServer) -> None:
    server.latency_s = 0.05
    client = make_client(server)
    _, summary = judge_all(client, jobs(24), settings=RunSettings(concurrency=4))
    assert summary.n_ok == 24
    assert 2 <= server.max_in_flight <= 4


def test_client_is_reusable_across_runs(server: FakeOpenAIServer) -> None:
    client = make_client(server)
    assert run(client, 2)[1].n_ok == 2
    assert run(client, 2)[1].n_ok == 2


def test_duplicate_items_send_one_request(server: FakeOpenAIServer) -> None:
    server.latency_s = 0.05
    same = [
        JudgeJob(f"dup{i}", ChatRequest("judge-m", [user_message("same question")]), Answer)
        for i in range(5)
    ]
    outs, summary = judge_all(make_client(server), same, settings=RunSettings(concurrency=5))
    assert [o.status for o in outs] == ["ok"] * 5
    assert len(server.received) == 1 and summary.n_requests == 1 and summary.n_cache_hits == 4


def test_cost_is_computed_from_configured_prices(server: FakeOpenAIServer) -> None:
    _, summary = run(make_client(server), 2, price_input_per_mtok=2.0, price_output_per_mtok=10.0)
    assert summary.prompt_tokens > 0
    want = summary.prompt_tokens * 2.0 / 1e6 + summary.completion_tokens * 10.0 / 1e6
    assert summary.cost_usd == pytest.approx(want)
    _, unpriced = run(make_client(server), 1)
    assert unpriced.cost_usd is None and "cost unknown" in unpriced.line()


def test_unreachable_endpoint_is_retried_then_counted(sleeps: list[float]) -> None:
    with FakeOpenAIServer() as srv:
        url = srv.base_url
    client = OpenAIJudge("judge-m", base_url=url, timeout_s=2.0, retry=FAST)  # server is gone
    outs, summary = run(client)
    assert outs[0].status == "error" and "connection failed" in (outs[0].reason or "")
    assert summary.n_retries == FAST.max_retries and len(sleeps) == FAST.max_retries


@pytest.mark.parametrize("status", [401, 404])
def test_bad_key_or_model_stops_the_run(server: FakeOpenAIServer, status: int) -> None:
    from vislens.errors import ConfigError

    server.script = [Scripted(), Scripted(status=status)]
    with pytest.raises(ConfigError, match=f"HTTP {status}"):
        run(make_client(server), 10)
    assert len(server.received) == 2  # stopped at once, not 10 errors in a row
