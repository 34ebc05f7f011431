"""Open the judge a config asks for: an OpenAI-compatible endpoint or a local VLM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vislens.errors import ConfigError
from vislens.judge.cache import JudgeCache
from vislens.judge.client import JudgeClient
from vislens.judge.config import JudgeConfig
from vislens.judge.openai_client import OpenAIJudge, RetryPolicy
from vislens.judge.runner import RunSettings


def resolve_backend(cfg: JudgeConfig) -> str:
    """``openai`` or ``local``: ``auto`` means local for ``toy`` or an existing model directory."""
    if cfg.backend != "auto":
        return cfg.backend
    if cfg.model == "toy" or (cfg.model and Path(cfg.model).is_dir() and not cfg.base_url):
        return "local"
    return "openai"


def load_local_adapter(model: str) -> Any:
    """The VLM adapter for ``model`` (``toy``, hub id or directory), as ``vislens.models`` loads it."""
    from vislens.models.toy.paths import is_toy_name

    if is_toy_name(model):
        from vislens.models.toy import load_toy_vlm

        return load_toy_vlm(model)
    from vislens.models.vlm import load_vlm

    return load_vlm(model)


def open_client(cfg: JudgeConfig, *, adapter: Any = None) -> JudgeClient:
    """The client ``cfg`` describes; ``adapter`` overrides loading a local model by name."""
    if not cfg.model and adapter is None:
        raise ConfigError("no judge model given — pass --model or set [judge] model in study.toml")
    if adapter is not None or resolve_backend(cfg) == "local":
        from vislens.judge.local_client import LocalJudge

        return LocalJudge(
            adapter if adapter is not None else load_local_adapter(cfg.model), cfg.model or "local"
        )
    return OpenAIJudge(
        cfg.model,
        base_url=cfg.base_url or None,
        api_key_env=cfg.api_key_env,
        timeout_s=cfg.timeout_s,
        retry=RetryPolicy(
            max_retries=cfg.max_retries,
            backoff_initial_s=cfg.backoff_initial_s,
            backoff_max_s=cfg.backoff_max_s,
            max_retry_after_s=cfg.max_retry_after_s,
        ),
        max_concurrency=cfg.concurrency,
    )


def run_settings(cfg: JudgeConfig, *, task: str, template: str, progress: str) -> RunSettings:
    """Backend-independent run settings from the ``[judge]`` config."""
    return RunSettings(
        concurrency=cfg.concurrency,
        max_reask=cfg.max_reask,
        price_input_per_mtok=cfg.price_input_per_mtok,
        price_output_per_mtok=cfg.price_output_per_mtok,
        task=task,
        template=template,
        progress=progress,
    )


def request_params(cfg: JudgeConfig) -> dict[str, Any]:
    """Sampling parameters sent with (and hashed into the cache key of) every request."""
    params: dict[str, Any] = {"temperature": cfg.temperature, "max_tokens": cfg.max_tokens}
    if cfg.json_mode:
        params["response_format"] = {"type": "json_object"}
    return params


def open_cache(path: Path | None) -> JudgeCache:
    """The judge cache at ``path`` (None: in memory, nothing kept)."""
    return JudgeCache(path)
