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

    api_key_env: str = "OPENAI_API_KEY"
    """Name of the environment variable holding the API key (the key itself is never written)."""

    concurrency: int = Field(default=8, ge=1)
    """Requests in flight at once."""

    timeout_s: float = Field(default=60.0, gt=0)
    """Seconds before one request is abandoned and retried."""

    max_retries: int = Field(default=5, ge=0)
    """Retries on 429 / 5xx / timeouts, with backoff (Retry-After honoured)."""
