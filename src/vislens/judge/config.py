"""The ``[judge]`` section of study.toml. The API key is never stored here."""

from __future__ import annotations

from pydantic import Field

from vislens.config_base import Section


class JudgeConfig(Section):
    base_url: str = ""
    """OpenAI-compatible endpoint (hosted API, vLLM, Ollama, llama.cpp server); empty means
    the OPENAI_BASE_URL environment variable or the SDK's default."""

    model: str = ""
    """Model name sent to the endpoint, or a local VLM (hub id / directory / ``toy``)."""

    backend: str = Field(default="auto", pattern="^(auto|openai|local)$")
    """``openai`` (HTTP chat completions), ``local`` (a VLM run in-process through the model
    adapters) or ``auto`` (local when ``model`` is ``toy`` or an existing directory)."""

    api_key_env: str = "OPENAI_API_KEY"
    """Name of the environment variable holding the API key (the key itself is never written)."""

    concurrency: int = Field(default=8, ge=1)
    """Requests in flight at once."""

    timeout_s: float = Field(default=60.0, gt=0)
    """Seconds before one request is abandoned and retried."""

    max_retries: int = Field(default=5, ge=0)
    """Retries on 429 / 5xx / timeouts, with backoff (Retry-After honoured)."""

    backoff_initial_s: float = Field(default=1.0, ge=0)
    """First backoff delay; doubled after each retry (with jitter) when no Retry-After is given."""

    backoff_max_s: float = Field(default=30.0, ge=0)
    """Longest backoff delay between two retries."""

    max_retry_after_s: float = Field(default=120.0, ge=0)
    """Longest Retry-After the client waits for; a longer one fails the request as an error."""

    max_reask: int = Field(default=1, ge=0)
    """Times an answer that is not valid JSON for the task's schema is asked for again."""

    temperature: float = Field(default=0.0, ge=0)
    """Sampling temperature sent with every request (part of the cache key)."""

    max_tokens: int = Field(default=512, ge=1)
    """Most tokens one answer may have (part of the cache key)."""

    json_mode: bool = False
    """Ask the endpoint for a JSON object (``response_format={"type": "json_object"}``); only
    for endpoints that support it. Answers are parsed tolerantly either way."""

    price_input_per_mtok: float = Field(default=0.0, ge=0)
    """USD per million prompt tokens, for the cost line of every summary (0: cost not known)."""

    price_output_per_mtok: float = Field(default=0.0, ge=0)
    """USD per million completion tokens, for the cost line of every summary."""
