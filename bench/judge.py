"""Judge throughput and cache speed, against a local OpenAI-compatible server.

1. Requests/s at concurrency 1, 8 and 32 with the server answering after 200 ms, next to the
   ideal (concurrency / latency: perfect overlap, no client overhead).
2. The same 1,000-item job run twice: the second run must be served entirely from the judge
   cache (goal: 0 requests, under 1 s).

Run: ``python bench/judge.py [--quick]`` (no network, no key; --quick: half the items).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from _report import figure
from vislens.judge.cache import JudgeCache
from vislens.judge.fake_server import FakeOpenAIServer
from vislens.judge.messages import ChatRequest, user_message
from vislens.judge.openai_client import OpenAIJudge, RetryPolicy
from vislens.judge.runner import JudgeJob, RunSettings, judge_all

LATENCY_S = 0.2


class Answer(BaseModel):
    label: str


def jobs(n: int, tag: str) -> list[JudgeJob[Answer]]:
    return [
        JudgeJob(
            f"{tag}{i}",
            ChatRequest("bench-m", [user_message(f"{tag} item {i}: related?")], {"temperature": 0}),
            Answer,
        )
        for i in range(n)
    ]


def _serve(latency_s: float, port_q: mp.Queue, count: Any, stop: Any) -> None:
    """The server, in its own process so that it does not share the client's interpreter lock."""

    def answer(body: dict[str, Any]) -> str:
        with count.get_lock():
            count.value += 1
        return '{"label": "related"}'

    with FakeOpenAIServer(answer, latency_s=latency_s) as srv:
        port_q.put(srv.base_url)
        stop.wait()


@contextmanager
def server(latency_s: float) -> Iterator[tuple[str, Any]]:
    """(base URL, shared count of answered requests) of a server in a child process."""
    ctx = mp.get_context("fork")
    port_q: mp.Queue = ctx.Queue()
    count = ctx.Value("i", 0)
    stop = ctx.Event()
    proc = ctx.Process(target=_serve, args=(latency_s, port_q, count, stop), daemon=True)
    proc.start()
    try:
        yield port_q.get(timeout=30), count
    finally:
        stop.set()
        proc.join(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="half the items per concurrency")
    args = ap.parse_args()
    per = 5 if args.quick else 10
    os.environ.setdefault("VISLENS_NO_PROGRESS", "1")
    print(f"throughput, server latency {LATENCY_S * 1000:.0f} ms (server in its own process)")
    print(
        f"{'concurrency':>11} {'items':>6} {'req/s (vislens)':>16} {'req/s (ideal)':>14} {'efficiency':>10}"
    )
    with server(LATENCY_S) as (url, _):
        client = OpenAIJudge("bench-m", base_url=url, retry=RetryPolicy(0), max_concurrency=64)
        for c in (1, 8, 32):
            n = max(10, c * per)
            t0 = time.perf_counter()
            _, s = judge_all(client, jobs(n, f"c{c}-"), settings=RunSettings(concurrency=c))
            dt = time.perf_counter() - t0
            assert s.n_ok == n and s.n_requests == n, (s.line(), s.failures[:3])
            ours, ideal = n / dt, c / LATENCY_S
            print(f"{c:>11} {n:>6} {ours:>16.1f} {ideal:>14.1f} {ours / ideal:>10.0%}")
            figure(
                f"judge requests/s at concurrency {c} (200 ms server)",
                ours,
                "req/s",
                reference="ideal: concurrency / latency",
                reference_value=ideal,
                note=f"efficiency {ours / ideal:.0%}; {n} items",
            )

    with server(0.0) as (url, count), tempfile.TemporaryDirectory() as tmp:
        client = OpenAIJudge("bench-m", base_url=url, retry=RetryPolicy(0), max_concurrency=64)
        cache = JudgeCache(Path(tmp) / "judge-cache.sqlite")
        job = jobs(1000, "cached-")
        t0 = time.perf_counter()
        _, first = judge_all(client, job, cache=cache, settings=RunSettings(concurrency=32))
        t_first = time.perf_counter() - t0
        n_before = count.value
        t0 = time.perf_counter()
        _, second = judge_all(
            client, jobs(1000, "cached-"), cache=cache, settings=RunSettings(concurrency=32)
        )
        t_second = time.perf_counter() - t0
        sent = count.value - n_before
        cache.close()
    print()
    print("1,000-item job twice (server latency 0 ms)")
    print(
        f"{'run':>8} {'requests (server saw)':>22} {'cache hits':>11} {'seconds':>8} {'goal':>22}"
    )
    print(f"{'first':>8} {first.n_requests:>22} {first.n_cache_hits:>11} {t_first:>8.2f} {'-':>22}")
    print(
        f"{'second':>8} {sent:>22} {second.n_cache_hits:>11} {t_second:>8.2f} {'0 requests, < 1.00 s':>22}"
    )
    figure(
        "1,000-item judge job again, from the cache",
        t_second,
        "s",
        reference="first run (server latency 0 ms)",
        reference_value=t_first,
        goal="0 requests, < 1 s",
        met=sent == 0 and t_second < 1.0,
        note=f"{sent} requests reached the server; {second.n_cache_hits} cache hits",
    )


if __name__ == "__main__":
    main()
