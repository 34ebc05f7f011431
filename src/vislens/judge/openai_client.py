"""OpenAI-compatible chat completions through the ``openai`` SDK.

Covers hosted APIs and local servers (vLLM, Ollama, llama.cpp server). The SDK's own retry
loop is switched off (``max_retries=0``) and replaced by ``RetryPolicy``: its delays are
configurable (tests use milliseconds), every retry is counted in the run summary, and a
Retry-After longer than ``max_retry_after_s`` fails fast instead of stalling a run.
The API key is read from the environment and handed to the SDK only; it is never logged,
cached or written.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import time
from dataclasses import dataclass
from typing import Any

from vislens.errors import ConfigError
from vislens.judge.client import ChatReply, JudgeRequestError
from vislens.judge.messages import ChatRequest


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before sending a failed request again."""

    max_retries: int = 5
    """Retries after the first attempt."""
    backoff_initial_s: float = 1.0
    """First delay without Retry-After; doubled on each retry, up to ``backoff_max_s``."""
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 120.0
    """A Retry-After above this is not waited for: the request fails as an error."""

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (0-based): exponential with full jitter in [d/2, d]."""
        d = min(self.backoff_initial_s * (2.0**attempt), self.backoff_max_s)
        return d * (0.5 + 0.5 * random.random())


def parse_retry_after(headers: Any) -> float | None:
    """Seconds asked for by ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class OpenAIJudge:
    """A ``JudgeClient`` over an OpenAI-compatible ``/chat/completions`` endpoint."""

    backend = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        max_concurrency: int = 8,
    ) -> None:
        import openai

        if not model:
            raise ConfigError(
                "no judge model given — pass --model or set [judge] model in study.toml"
            )
        self.model = model
        self.max_concurrency = max_concurrency
        self.retry = retry or RetryPolicy()
        key = os.environ.get(api_key_env)
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        if not key:
            if base_url is None:
                raise ConfigError(
                    f"the environment variable {api_key_env} holding the API key is not set — "
                    f"export it, or point --base-url at a local server"
                )
            key = "unused"  # local servers (vLLM, Ollama) accept any key
        self._openai = openai
        self._key = key
        self._base_url = base_url
        self._timeout_s = timeout_s
        self._client = self._new_client()
        self._loop: object | None = None
        self.base_url = str(self._client.base_url)

    def _new_client(self) -> Any:
        return self._openai.AsyncOpenAI(
            api_key=self._key, base_url=self._base_url, timeout=self._timeout_s, max_retries=0
        )

    def _client_for_loop(self) -> Any:
        # The SDK's connection pool belongs to one event loop; each judge_all call runs its
        # own loop, so a client reused across calls gets a fresh pool per loop.
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            self._client = self._new_client()
        self._loop = loop
        return self._client

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIJudge(model={self.model!r}, base_url={self.base_url!r})"

    async def complete(self, request: ChatRequest) -> ChatReply:
        """Send ``request``, retrying 429 / 5xx / timeouts / dropped connections with backoff."""
        oa = self._openai
        client = self._client_for_loop()
        n_retries = 0
        while True:
            try:
                resp = await client.chat.completions.create(
                    model=request.model, messages=request.messages, **request.params
                )
            except oa.APIStatusError as e:
                status = e.status_code
                if status != 429 and status < 500 and status not in (408, 409):
                    raise JudgeRequestError(
                        f"HTTP {status}: {_short(e)}",
                        n_retries=n_retries,
                        fatal=status in (401, 403, 404),
                    ) from None
                wait = parse_retry_after(e.response.headers)
                if wait is not None and wait > self.retry.max_retry_after_s:
                    raise JudgeRequestError(
                        f"HTTP {status} asked to retry after {wait:.0f} s, above max_retry_after_s",
                        n_retries=n_retries,
                    ) from None
                reason = f"HTTP {status}: {_short(e)}"
            except oa.APITimeoutError:
                wait, reason = None, "timed out"
            except oa.APIConnectionError as e:
                wait, reason = None, f"connection failed: {_short(e)}"
            else:
                return _reply(resp, n_retries)
            if n_retries >= self.retry.max_retries:
                raise JudgeRequestError(
                    f"{reason} (gave up after {n_retries} retries)", n_retries=n_retries
                )
            await asyncio.sleep(wait if wait is not None else self.retry.backoff(n_retries))
            n_retries += 1

    async def aclose(self) -> None:
        """Close this event loop's connections; the judge stays usable (a later call reconnects)."""
        if self._loop is not None:
            await self._client.close()
            self._client = self._new_client()
            self._loop = None


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


def _reply(resp: Any, n_retries: int) -> ChatReply:
    if not resp.choices:
        raise JudgeRequestError("the endpoint returned no choices", n_retries=n_retries)
    choice = resp.choices[0]
    msg = choice.message
    usage = resp.usage
    return ChatReply(
        text=msg.content or "",
        finish_reason=choice.finish_reason or "stop",
        refusal=getattr(msg, "refusal", None) or None,
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0) if usage else 0,
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0) if usage else 0,
        n_retries=n_retries,
    )
