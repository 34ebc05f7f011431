"""Shared setup for the human-study tests: studies, exports, a real server process, a real
PostgreSQL server, and Chromium. Missing system programs fail loudly, never skip."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from vislens.human.config import AnnotationsConfig
from vislens.study import Study, StudyConfig

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_export(path: Path, n: int, *, special: dict[int, str] | None = None) -> Path:
    """A Neuronpedia-style export of ``n`` features (descriptions overridable by index)."""
    special = special or {}
    recs = [
        {
            "modelId": "gemma-2-2b",
            "layer": "12-res",
            "index": str(i),
            "description": special.get(i, f"feature {i}: tokens about topic {i % 7}"),
        }
        for i in range(n)
    ]
    path.write_text(json.dumps(recs), encoding="utf-8")
    return path


def make_study(root: Path, database_url: str = "") -> Study:
    cfg = StudyConfig(name=root.name, annotations=AnnotationsConfig(database_url=database_url))
    return Study.init(root, cfg)


def vislens_exe() -> str:
    exe = Path(sys.executable).with_name("vislens")
    assert exe.exists(), f"{exe} missing: install vislens into this environment (make install)"
    return str(exe)


class ServerProcess:
    """`vislens serve STUDY` in a child process on a free port; kill -9 and restart at will."""

    def __init__(self, study_dir: Path, port: int | None = None) -> None:
        self.study_dir = study_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="vislens-serve-", suffix=".log")[1])

    def start(self, timeout: float = 60.0) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        env = {**os.environ, "VISLENS_NO_PROGRESS": "1"}
        self.proc = subprocess.Popen(
            [vislens_exe(), "serve", str(self.study_dir), "--port", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/api/v1/tasks", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(
            f"server did not answer within {timeout}s:\n{self.log_path.read_text()[-3000:]}"
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@contextlib.contextmanager
def running_server(study_dir: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(study_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run `make system-deps`"
        )
    return Path(found[-1]).parent


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; the Debian package creates the `postgres` user.
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.fail(
                "running as root without `runuser`: cannot start PostgreSQL as the postgres user"
            )
        return [runuser, "-u", "postgres", "--", *cmd]
    return cmd


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throw-away PostgreSQL server (initdb into a temp dir); yields its SQLAlchemy URL."""
    bindir = _pg_bin()
    data_dir = Path(tempfile.mkdtemp(prefix="vislens-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data_dir, "postgres", "postgres")
    pgdata = data_dir / "data"
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "initdb"),
                "-D",
                str(pgdata),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        ),
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = data_dir / "server.log"
    proc = subprocess.Popen(
        _as_postgres(
            [
                str(bindir / "postgres"),
                "-D",
                str(pgdata),
                "-p",
                str(port),
                "-k",
                str(data_dir),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=200",
            ]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    try:
        import psycopg

        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres").close()
                break
            except psycopg.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"PostgreSQL did not start (see {log})")
                time.sleep(0.2)
        yield url
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "stop", "-D", str(pgdata), "-m", "fast"]),
            capture_output=True,
            timeout=60,
        )
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
        shutil.rmtree(data_dir, ignore_errors=True)


def chromium_browser(playwright: Any) -> Any:
    """Debian's Chromium through Playwright (never a downloaded browser)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make system-deps` (installs Debian's chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def write_seed002_pair(folder: Path, human_name: str, model_name: str) -> tuple[Path, Path]:
    """Label files with the seed 002 example's confusion: TP=69, TN=201, FP=5, FN=25."""
    pairs = (
        [("related", "related")] * 69
        + [("not-related", "not-related")] * 201
        + [("not-related", "related")] * 5
        + [("related", "not-related")] * 25
    )
    human, model = [], []
    for row_id, (h, m) in enumerate(pairs):
        idx = 1000 + row_id
        human.append(
            {
                "_row_id": row_id,
                "feature_index": idx,
                "feature_id": f"gemma-2-2b/12-res/{idx}",
                "description": f"d{row_id}",
                "label": h,
            }
        )
        model.append(
            {"feature_id": f"12-gemmascope-res-65k-{idx}", "description": f"d{row_id}", "label": m}
        )
    hp, mp = folder / human_name, folder / model_name
    hp.write_text(json.dumps(human))
    mp.write_text(json.dumps(model))
    return hp, mp


def write_latentlens_files(folder: Path, n: int = 24, seed: int = 0) -> None:
    """data.json, evaluation_alice_s1.json, evaluation_bob_s1.json and
    human_study_llm_results.json over synthetic grid-world images."""
    import random

    from vislens.data.synthetic import generate_grid_world

    rng = random.Random(seed)
    generate_grid_world(folder / "world", 4, seed)
    images = sorted((folder / "world" / "images").glob("*.png"))
    instances = []
    for i in range(n):
        instances.append(
            {
                "id": f"toy-{'ab'[i % 2]}_{i:05d}_patch0",
                "instance_id": f"{i:05d}_patch0",
                "model": f"toy-{'ab'[i % 2]}",
                "image_url": str(images[i % len(images)].resolve()),
                "patch_row": rng.randrange(10),
                "patch_col": rng.randrange(10),
                "grid": 10,
                "layer": 2,
                "candidates": [
                    ["a red circle", "red"],
                    ["a blue square", "blue"],
                    ["empty background", "background"],
                ],
            }
        )
    (folder / "data.json").write_text(json.dumps(instances))
    truth = [rng.random() < 0.5 for _ in range(n)]
    for user in ("alice", "bob"):
        results = []
        for i, inst in enumerate(instances):
            says = truth[i] if rng.random() < 0.8 else not truth[i]
            results.append(
                {
                    "instanceId": inst["id"],
                    "noneSelected": not says,
                    "timestamp": "2025-11-13T15:11:04.553Z",
                    "selectedWords": [{"word": "a red circle", "relation": "concrete"}]
                    if says
                    else [],
                }
            )
        (folder / f"evaluation_{user}_s1.json").write_text(
            json.dumps(
                {
                    "userId": user,
                    "sessionId": "s1",
                    "timestamp": "2025-11-13T15:12:44Z",
                    "results": results,
                }
            )
        )
    llm = {
        "total_instances": n,
        "evaluated": n,
        "results": [
            {
                "instance_id": inst["instance_id"],
                "gpt_response": {
                    "interpretable": truth[i] if rng.random() < 0.85 else not truth[i],
                    "concrete_words": [],
                    "abstract_words": [],
                    "global_words": [],
                    "reasoning": "",
                },
            }
            for i, inst in enumerate(instances)
        ],
    }
    (folder / "human_study_llm_results.json").write_text(json.dumps(llm))
    cards = [
        {
            "feature_id": f"f{k}",
            "label": ["red things", "squares"][k],
            "images": [str(p.resolve()) for p in images[:3]],
        }
        for k in range(2)
    ]
    (folder / "features.json").write_text(json.dumps(cards))
