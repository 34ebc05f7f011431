"""Run many judge requests: cache first, bounded concurrency, tolerant parsing, bounded re-ask.

``judge_all`` is what every task calls. Per item it yields one ``JudgeOutcome`` whose status
is explicit — ``ok``, ``parse_failure``, ``refusal`` or ``error`` — and the ``RunSummary``
counts each kind, the requests actually sent, the cache hits, retries, re-asks, tokens and
cost. No failure is ever turned into a default answer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from vislens.errors import ConfigError
from vislens.judge.cache import JudgeCache
from vislens.judge.client import ChatReply, JudgeClient, JudgeRequestError
from vislens.judge.messages import ChatRequest
from vislens.judge.parsing import looks_like_refusal, parse_answer
from vislens.judge.templates import load_template
from vislens.progress import make_progress

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")

Status = Literal["ok", "parse_failure", "refusal", "error"]
SUMMARY_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class JudgeJob(Generic[T]):
    """One item to judge: its id, the request, and the schema its answer must satisfy."""

    item_id: str
    request: ChatRequest | Callable[[], ChatRequest]
    """The request, or a function that builds it when the item's turn comes (so a run over
    many images holds only the requests in progress in memory, not every encoded image)."""
    schema: type[T]

    def build(self) -> ChatRequest:
        return self.request if isinstance(self.request, ChatRequest) else self.request()


@dataclass(frozen=True)
class JudgeOutcome(Generic[T]):
    """The verdict on one item."""

    item_id: str
    status: Status
    value: T | None
    """The validated answer; None unless ``status == "ok"``."""
    text: str = ""
    """The last raw answer text (empty after a transport error)."""
    reason: str | None = None
    """Why the item is not ``ok``."""


class Failure(BaseModel):
    item_id: str
    status: Status
    reason: str


class RunSummary(BaseModel):
    """Counts of one judging run (written as ``*.summary.json``; docs/formats/judge-summary.md)."""

    schema_version: int = SUMMARY_SCHEMA_VERSION
    task: str = ""
    template: str = ""
    model: str = ""
    backend: str = ""
    n_items: int = 0
    n_ok: int = 0
    n_parse_failures: int = 0
    n_refusals: int = 0
    n_errors: int = 0
    n_skipped: int = 0
    """Input records not judged at all (e.g. empty descriptions); set by the task."""
    n_requests: int = 0
    """Requests sent to the backend in this run (re-asks included)."""
    n_cache_hits: int = 0
    """Requests answered from the judge cache instead of the backend."""
    n_retries: int = 0
    n_reasks: int = 0
    prompt_tokens: int = 0
    """Tokens of the requests sent in this run."""
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    """Tokens of the answers served from the cache (what a re-run saved)."""
    cached_completion_tokens: int = 0
    cost_usd: float | None = None
    """Cost of this run's requests at the configured prices; null when no price is set."""
    wall_s: float = 0.0
    failures: list[Failure] = Field(default_factory=list)

    def line(self) -> str:
        """One line for the terminal."""
        cost = (
            "cost unknown (set judge prices)" if self.cost_usd is None else f"${self.cost_usd:.4f}"
        )
        return (
            f"{self.n_ok}/{self.n_items} ok, {self.n_parse_failures} parse failures, "
            f"{self.n_refusals} refusals, {self.n_errors} errors, {self.n_skipped} skipped; "
            f"{self.n_requests} requests sent, {self.n_cache_hits} from cache, "
            f"{self.n_retries} retries, {self.n_reasks} re-asks; "
            f"{self.prompt_tokens}+{self.completion_tokens} tokens, {cost}"
        )


@dataclass(frozen=True)
class RunSettings:
    """How a run behaves, independent of the backend."""

    concurrency: int = 8
    max_reask: int = 1
    price_input_per_mtok: float = 0.0
    price_output_per_mtok: float = 0.0
    task: str = ""
    template: str = ""
    progress: str = "judging"


def _is_refusal(reply: ChatReply) -> bool:
    return bool(reply.refusal) or reply.finish_reason == "content_filter"


async def _run(
    client: JudgeClient,
    cache: JudgeCache,
    jobs: Sequence[JudgeJob[T]],
    s: RunSettings,
    summary: RunSummary,
) -> list[JudgeOutcome[T]]:
    sem = asyncio.Semaphore(max(1, min(s.concurrency, client.max_concurrency)))
    reask = load_template("reask")

    inflight: dict[str, asyncio.Future[ChatReply]] = {}

    fatal: list[JudgeRequestError] = []  # set once the endpoint refuses everyone

    async def send(req: ChatRequest) -> ChatReply:
        async with sem:
            if fatal:
                raise fatal[0]
            summary.n_requests += 1
            try:
                reply = await client.complete(req)
            except JudgeRequestError as e:
                summary.n_retries += e.n_retries
                if e.fatal:
                    fatal.append(e)
                raise
        # Committed before anyone else can ask, so a kill never loses an answered request.
        cache.put(req, reply, task=s.task)
        summary.n_retries += reply.n_retries
        summary.prompt_tokens += reply.prompt_tokens
        summary.completion_tokens += reply.completion_tokens
        return reply

    async def ask(req: ChatRequest) -> ChatReply:
        key = req.key()
        hit = cache.get(key)
        if hit is None and key in inflight:
            # The same request is already on its way (duplicate items): share its answer.
            hit = await asyncio.shield(inflight[key])
        if hit is not None:
            summary.n_cache_hits += 1
            summary.cached_prompt_tokens += hit.prompt_tokens
            summary.cached_completion_tokens += hit.completion_tokens
            return hit
        fut: asyncio.Future[ChatReply] = asyncio.get_running_loop().create_future()
        inflight[key] = fut
        try:
            reply = await send(req)
        except BaseException as e:
            if isinstance(e, asyncio.CancelledError):
                fut.cancel()
            else:
                fut.set_exception(e)
                fut.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            inflight.pop(key, None)
        fut.set_result(reply)
        return reply

    async def one(job: JudgeJob[T]) -> JudgeOutcome[T]:
        try:
            req = job.build()
        except Exception as e:  # an unreadable image fails its item, not the whole run
            return JudgeOutcome(job.item_id, "error", None, "", f"could not build the request: {e}")
        for attempt in range(s.max_reask + 1):
            try:
                reply = await ask(req)
            except JudgeRequestError as e:
                if e.fatal:
                    raise
                return JudgeOutcome(job.item_id, "error", None, "", str(e))
            if _is_refusal(reply):
                return JudgeOutcome(
                    job.item_id, "refusal", None, reply.text, reply.refusal or "content filter"
                )
            parsed = parse_answer(reply.text, job.schema)
            if parsed.value is not None:
                return JudgeOutcome(job.item_id, "ok", parsed.value, reply.text)
            if looks_like_refusal(reply.text):
                return JudgeOutcome(job.item_id, "refusal", None, reply.text, reply.text[:200])
            if attempt == s.max_reask:
                return JudgeOutcome(job.item_id, "parse_failure", None, reply.text, parsed.error)
            summary.n_reasks += 1
            _, again = reask.render(error=parsed.error)
            req = req.with_turns(
                {"role": "assistant", "content": reply.text},
                {"role": "user", "content": [{"type": "text", "text": again}]},
            )
        raise AssertionError("unreachable")

    outcomes: list[JudgeOutcome[T] | None] = [None] * len(jobs)
    with make_progress() as progress:
        bar = progress.add_task(s.progress, total=len(jobs))

        # Items in progress at once: enough to keep every request slot busy through re-asks
        # and cache hits, few enough that built requests (encoded images) stay bounded.
        item_slots = asyncio.Semaphore(max(64, 4 * s.concurrency))

        async def indexed(i: int, job: JudgeJob[T]) -> None:
            async with item_slots:
                outcomes[i] = await one(job)
            progress.advance(bar)

        try:
            await asyncio.gather(*(indexed(i, j) for i, j in enumerate(jobs)))
        finally:
            # Connections belong to this event loop, which ends with the run.
            await client.aclose()
    return [o for o in outcomes if o is not None]


def _run_sync(coro: Coroutine[Any, Any, R]) -> R:
    """``asyncio.run``, also from inside a running loop (a notebook): then in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def judge_all(
    client: JudgeClient,
    jobs: Sequence[JudgeJob[T]],
    *,
    cache: JudgeCache | None = None,
    settings: RunSettings | None = None,
) -> tuple[list[JudgeOutcome[T]], RunSummary]:
    """Judge every job (in input order) and count what happened.

    The client's connections are closed when the run ends; the client itself can be used
    for further runs. ``cache`` stays open (the caller owns it).
    """
    s = settings or RunSettings()
    cache = cache if cache is not None else JudgeCache(None)
    summary = RunSummary(
        task=s.task,
        template=s.template,
        model=client.model,
        backend=client.backend,
        n_items=len(jobs),
    )
    t0 = time.perf_counter()
    try:
        outcomes = _run_sync(_run(client, cache, jobs, s, summary))
    except JudgeRequestError as e:
        # Answers received so far are in the cache; the next run resumes from them.
        raise ConfigError(
            f"the judge endpoint refused the request ({e}) — check the model name, the API key "
            f"variable and the base URL; answers received so far are kept in the judge cache"
        ) from None
    summary.wall_s = round(time.perf_counter() - t0, 3)
    for o in outcomes:
        if o.status == "ok":
            summary.n_ok += 1
        else:
            summary.failures.append(
                Failure(item_id=o.item_id, status=o.status, reason=o.reason or "")
            )
            if o.status == "parse_failure":
                summary.n_parse_failures += 1
            elif o.status == "refusal":
                summary.n_refusals += 1
            else:
                summary.n_errors += 1
    if s.price_input_per_mtok or s.price_output_per_mtok:
        summary.cost_usd = round(
            summary.prompt_tokens * s.price_input_per_mtok / 1e6
            + summary.completion_tokens * s.price_output_per_mtok / 1e6,
            6,
        )
    return outcomes, summary
