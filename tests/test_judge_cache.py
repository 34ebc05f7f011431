"""The judge cache: keys, persistence, and a killed run that resumes without repeating a call."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from helpers_judge import FakeOpenAIServer, body_key, last_user_text
from vislens.errors import InputError
from vislens.judge.cache import SCHEMA_VERSION, JudgeCache
from vislens.judge.client import ChatReply
from vislens.judge.messages import ChatRequest, user_message


def classify_responder(body: dict[str, Any]) -> str:
    """'related' exactly when the description mentions formatting."""
    text = last_user_text(body).split('"""')[1]
    label = "related" if "format" in text.lower() else "not-related"
    return json.dumps({"label": label, "reason": "scripted"})


def write_export(path: Path, n: int) -> Path:
    records = [
        {
            "modelId": "gemma-2-2b",
            "layer": "12-gemmascope-res-65k",
            "index": str(i),
            "description": f"  {'markdown formatting' if i % 3 == 0 else 'dogs and cats'} number {i} ",
            "explanationModelName": "gpt-4o-mini",
        }
        for i in range(n)
    ]
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def req(text: str = "hi", model: str = "m", **params: Any) -> ChatRequest:
    return ChatRequest(model, [user_message(text)], params)


def test_key_is_stable_and_sensitive_to_every_part() -> None:
    base = req("hi", "m", temperature=0.0)
    assert base.key() == req("hi", "m", temperature=0.0).key()
    others = [
        req("hi!", "m", temperature=0.0),
        req("hi", "m2", temperature=0.0),
        req("hi", "m", temperature=0.5),
    ]
    assert len({base.key(), *(o.key() for o in others)}) == 4
    img_a = ChatRequest("m", [user_message("x", [Image.new("RGB", (4, 4), "red")])])
    img_b = ChatRequest("m", [user_message("x", [Image.new("RGB", (4, 4), "blue")])])
    assert img_a.key() != img_b.key()


def test_answers_persist_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "judge-cache.sqlite"
    cache = JudgeCache(path)
    r = req()
    assert cache.get(r.key()) is None
    cache.put(r, ChatReply("answer", prompt_tokens=3, completion_tokens=2), task="t")
    cache.close()
    again = JudgeCache(path)
    hit = again.get(r.key())
    assert (
        hit is not None
        and hit.text == "answer"
        and (hit.prompt_tokens, hit.completion_tokens) == (3, 2)
    )
    assert len(again) == 1


def test_images_are_stored_as_digests_only(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = JudgeCache(path)
    r = ChatRequest("m", [user_message("look", [Image.new("RGB", (64, 64), "green")])])
    cache.put(r, ChatReply("ok"))
    stored = sqlite3.connect(path).execute("SELECT request_json FROM answers").fetchone()[0]
    assert "base64" not in stored and "sha256:" in stored


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    JudgeCache(path).close()
    db = sqlite3.connect(path)
    db.execute(
        "UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION + 1),)
    )
    db.commit()
    db.close()
    with pytest.raises(InputError, match="upgrade vislens"):
        JudgeCache(path)


def test_a_file_that_is_not_a_cache_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_text("not a database at all " * 100)
    with pytest.raises(InputError, match=str(path.name)):
        JudgeCache(path)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(classify_responder) as srv:
        yield srv


def _cli(args: list[str], env_extra: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "VISLENS_NO_PROGRESS": "1", **env_extra}
    env.pop("OPENAI_BASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "vislens.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_killed_run_resumes_without_repeating_a_request(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    n, n_before_kill = 12, 5
    export = write_export(tmp_path / "export.json", n)
    out = tmp_path / "classified.json"
    cache = tmp_path / "judge-cache.sqlite"
    args = ["judge", "classify", str(export), "--category", "formatting", "--model", "judge-m",
            "--base-url", server.base_url, "--concurrency", "1", "--cache", str(cache), "--out", str(out)]  # fmt: skip

    # First run: the server answers 5 requests, then holds the 6th; we kill the client there.
    server.block_after = n_before_kill
    proc = _cli(args, {})
    assert server.blocked.wait(60), proc.communicate(timeout=5)
    proc.kill()
    proc.wait(10)
    assert not out.exists()  # nothing half-written
    answered_first = set(server.answered)
    assert len(answered_first) == n_before_kill

    # Resume: nothing answered before is sent again; the held request is.
    n_received_before = len(server.received)
    server.block_after = None
    proc = _cli(args, {})
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr.decode()
    resent = {body_key(b) for b in server.received[n_received_before:]}
    assert resent.isdisjoint(answered_first)
    assert len(resent) == n - n_before_kill
    assert len(set(server.answered)) == n  # every request answered exactly once over both runs
    assert len(server.answered) == n
    summary = json.loads(out.with_name("classified.summary.json").read_text())
    assert summary["n_cache_hits"] == n_before_kill and summary["n_requests"] == n - n_before_kill

    # The result is the one an uninterrupted run gives.
    with FakeOpenAIServer(classify_responder) as fresh:
        ref_out = tmp_path / "reference.json"
        ref_args = [*args[:7], "--base-url", fresh.base_url, "--concurrency", "1",
                    "--cache", str(tmp_path / "ref-cache.sqlite"), "--out", str(ref_out)]  # fmt: skip
        proc = _cli(ref_args, {})
        assert proc.wait(120) == 0
    assert json.loads(out.read_text()) == json.loads(ref_out.read_text())

    # A third run costs nothing.
    proc = _cli(args, {})
    assert proc.wait(120) == 0
    assert len(server.answered) == n
    summary = json.loads(out.with_name("classified.summary.json").read_text())
    assert summary["n_requests"] == 0 and summary["n_cache_hits"] == n


def test_cache_command_reports_counts(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from vislens.cli import app

    cache = JudgeCache(tmp_path / "judge-cache.sqlite")
    for i in range(3):
        cache.put(
            req(f"q{i}"),
            ChatReply("a", prompt_tokens=10, completion_tokens=2),
            task="classify_description",
        )
    cache.put(
        req("q", model="other"),
        ChatReply("a", prompt_tokens=1, completion_tokens=1),
        task="latentlens",
    )
    cache.close()
    res = CliRunner().invoke(app, ["judge", "cache", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "4 answers" in res.output
    assert "m  classify_description: 3 answers, 30+6 tokens" in res.output


def test_json_mode_goes_into_the_request_and_its_key() -> None:
    from vislens.judge.backends import request_params
    from vislens.judge.config import JudgeConfig

    plain, json_mode = request_params(JudgeConfig()), request_params(JudgeConfig(json_mode=True))
    assert "response_format" not in plain and json_mode["response_format"] == {
        "type": "json_object"
    }
    assert req("x", **plain).key() != req("x", **json_mode).key()
