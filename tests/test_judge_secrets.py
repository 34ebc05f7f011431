"""The API key goes to the endpoint and nowhere else: not the cache, outputs, summaries or logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers_judge import FakeOpenAIServer
from vislens.errors import ConfigError
from vislens.judge.openai_client import OpenAIJudge

SECRET = "sk-test-d0n0tl3ak-7f3a9c"


def test_key_reaches_the_server_and_nothing_else(tmp_path: Path) -> None:
    export = tmp_path / "export.json"
    export.write_text(
        json.dumps([{"index": str(i), "description": f"feature {i}"} for i in range(3)])
    )
    with FakeOpenAIServer(lambda body: '{"label": "not-related"}') as srv:
        env = {**os.environ, "VISLENS_NO_PROGRESS": "1", "MY_JUDGE_KEY": SECRET}
        study = tmp_path / "study"
        study.mkdir()
        (study / "study.toml").write_text(
            f'[judge]\nmodel = "judge-m"\nbase_url = "{srv.base_url}"\napi_key_env = "MY_JUDGE_KEY"\n'
        )
        proc = subprocess.run(
            [sys.executable, "-m", "vislens.cli", "judge", "classify", str(export), "--study", str(study),
             "--out", str(tmp_path / "out.json")],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert srv.auth_headers and all(h == f"Bearer {SECRET}" for h in srv.auth_headers)
    assert SECRET not in proc.stdout + proc.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p != export]
    assert any(p.name == "judge-cache.sqlite" for p in files) and any(
        p.name == "out.json" for p in files
    )
    for p in files:
        assert SECRET.encode() not in p.read_bytes(), p


def test_client_repr_hides_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    client = OpenAIJudge("m", base_url="http://127.0.0.1:9/v1")
    assert SECRET not in repr(client) and SECRET not in str(client)


def test_missing_key_for_a_hosted_api_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="NO_SUCH_KEY_VAR"):
        OpenAIJudge("gpt-4o-mini", api_key_env="NO_SUCH_KEY_VAR")
