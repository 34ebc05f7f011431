"""The judge client protocol: one async ``complete`` for every backend.

A client turns a ``ChatRequest`` into a ``ChatReply`` or raises ``JudgeRequestError`` once
its own retries are spent. Caching, parsing, re-asking and accounting live in the runner,
so a new backend only has to speak this protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from vislens.judge.messages import ChatRequest


@dataclass(frozen=True)
class ChatReply:
    """What a backend answered to one request."""

    text: str
    """The answer's text ("" when the model refused or returned nothing)."""
    finish_reason: str = "stop"
    """``stop``, ``length``, ``content_filter`` ... as the endpoint reported it."""
    refusal: str | None = None
    """The endpoint's explicit refusal message, if it sent one."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    n_retries: int = 0
    """Transport retries (429, 5xx, timeouts) this reply took; not stored in the cache."""


class JudgeRequestError(Exception):
    """A request that failed for good: retries spent, or an error that retrying cannot fix."""

    def __init__(self, message: str, *, n_retries: int = 0, fatal: bool = False) -> None:
        super().__init__(message)
        self.n_retries = n_retries
        self.fatal = fatal
        """True when no other request can succeed either (bad key, unknown model): stop the run."""


@runtime_checkable
class JudgeClient(Protocol):
    """Anything that answers chat requests: an HTTP endpoint or a model in this process."""

    model: str
    """The model name that goes into every request and its cache key."""

    backend: str
    """``openai`` or ``local``; shown in summaries."""

    max_concurrency: int
    """Most requests this client serves at once (the runner never exceeds it)."""

    async def complete(self, request: ChatRequest) -> ChatReply:
        """Answer one request, retrying transport failures; raise JudgeRequestError if it cannot."""
        ...

    async def aclose(self) -> None:
        """Release what belongs to the current event loop (connections); stay usable after."""
        ...
