"""A local OpenAI-compatible chat server with scripted answers, for tests and benchmarks.

Real HTTP on 127.0.0.1, so the real ``openai`` SDK, its timeouts and our retries run exactly
as against a hosted API — without a network or a key. Behaviour is scripted per request:
``server.script`` is a queue of ``Scripted`` steps (status, headers such as Retry-After,
delay, text, refusal) consumed in arrival order; when it is empty, ``server.responder(body)``
answers 200 with text made from the request. Used by vislens' tests and ``bench/judge.py``;
handy for checking a pipeline offline before paying for a hosted judge::

    with FakeOpenAIServer(lambda body: '{"label": "related"}') as srv:
        client = OpenAIJudge("any-model", base_url=srv.base_url)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Scripted:
    """One scripted reaction to one request."""

    status: int = 200
    text: str | None = None
    """Answer text for a 200; None: ask the responder."""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    refusal: str | None = None
    finish_reason: str = "stop"


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the first user message (the task prompt, not a re-ask)."""
    for m in body["messages"]:
        if m["role"] == "user":
            content = m["content"]
            if isinstance(content, str):
                return content
            return "\n".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


def body_key(body: dict[str, Any]) -> str:
    """A stable id of one request body (what the server saw, byte-for-byte in meaning)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class FakeOpenAIServer:
    """Serves ``POST /v1/chat/completions`` on 127.0.0.1 in background threads."""

    def __init__(
        self,
        responder: Callable[[dict[str, Any]], str] | None = None,
        *,
        latency_s: float = 0.0,
    ) -> None:
        self.responder = responder or (lambda body: '{"answer": "ok"}')
        self.latency_s = latency_s
        self.script: list[Scripted] = []
        self.received: list[dict[str, Any]] = []
        """Every request body, in arrival order."""
        self.answered: list[str] = []
        """body_key of every request answered with a 200."""
        self.auth_headers: list[str] = []
        self.block_after: int | None = None
        """After this many 200 answers, hold every further request until ``stop``."""
        self.blocked = threading.Event()
        self.in_flight = 0
        self.max_in_flight = 0
        """Most requests being handled at the same moment."""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; without TCP_NODELAY the client's delayed
            # ACK would add ~40 ms to every answer and distort the benchmark.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(n))
                step = server._take(body, self.headers.get("authorization", ""))
                try:
                    self._handle(step, body)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _handle(self, step: Scripted | None, body: dict[str, Any]) -> None:
                if step is None:  # blocked: wait for the test to kill the client
                    server.blocked.set()
                    server._stop.wait()
                    return
                if step.delay_s:
                    time.sleep(step.delay_s)
                # The client may have given up (timeout): then there is nobody to answer.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._send(step, body)

            def _send(self, step: Scripted, body: dict[str, Any]) -> None:
                if step.status != 200:
                    payload = json.dumps(
                        {"error": {"message": f"scripted {step.status}", "type": "scripted"}}
                    )
                else:
                    text = step.text if step.text is not None else server.responder(body)
                    prompt = json.dumps(body["messages"])
                    payload = json.dumps(
                        {
                            "id": "chatcmpl-test",
                            "object": "chat.completion",
                            "created": 0,
                            "model": body["model"],
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {
                                        "role": "assistant",
                                        "content": text,
                                        "refusal": step.refusal,
                                    },
                                    "finish_reason": step.finish_reason,
                                }
                            ],
                            "usage": {
                                "prompt_tokens": len(prompt) // 4,
                                "completion_tokens": len(text) // 4,
                                "total_tokens": len(prompt) // 4 + len(text) // 4,
                            },
                        }
                    )
                data = payload.encode()
                self.send_response(step.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in step.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
                if step.status == 200:
                    with server._lock:
                        server.answered.append(body_key(body))

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the default backlog of 5 drops bursts of connections
            daemon_threads = True

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def _take(self, body: dict[str, Any], auth: str) -> Scripted | None:
        with self._lock:
            self.received.append(body)
            self.auth_headers.append(auth)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.block_after is not None and len(self.answered) >= self.block_after:
                return None
            step = self.script.pop(0) if self.script else Scripted()
        if self.latency_s and not step.delay_s:
            step.delay_s = self.latency_s
        return step

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
