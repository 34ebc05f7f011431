"""What every page and endpoint of the workbench shares: the study, its annotation store,
and one cached :class:`TaskSession` per task."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from vislens.errors import InputError
from vislens.human.session import TaskSession
from vislens.store.annotations import AnnotationStore
from vislens.store.annotations.schema import Annotator


@dataclass
class AppContext:
    study: Any
    store: AnnotationStore
    _sessions: dict[str, TaskSession] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _annotators: dict[tuple[str, str], Annotator] = field(default_factory=dict)
    force_tokens: bool = False
    """Set when the server listens beyond loopback: personal token links become mandatory."""
    crop_context: int | None = None
    """Patches on each side of the patch in annotation pages' zoomed crop (None: by grid)."""

    @property
    def require_token(self) -> bool:
        return self.force_tokens or bool(self.study.config.annotations.require_token)

    def check_reader(self, token: str | None) -> None:
        """When tokens are required, reading tasks or labels needs a known annotator's token."""
        if not self.require_token:
            return
        if not token:
            raise PermissionError("this study requires a personal token (send ?token=...)")
        try:
            self.identify(token=token)
        except InputError as e:
            raise PermissionError("unknown token") from e

    def session(self, task_name: str) -> TaskSession:
        """The task's session (items cached: a task's items never change)."""
        with self._lock:
            s = self._sessions.get(task_name)
        if s is None:
            s = TaskSession(self.store, task_name)
            with self._lock:
                self._sessions.setdefault(task_name, s)
        return s

    def identify(self, *, name: str | None = None, token: str | None = None) -> Annotator:
        """The annotator behind a token link, or by name (created on first use unless the
        study requires token links)."""
        key = ("token", token) if token else ("name", (name or "").strip())
        cached = self._annotators.get(key)  # annotators are never renamed or deleted
        if cached is not None:
            return cached
        if token:
            ann = self.store.annotator(token=token)
        elif not key[1]:
            raise InputError("no annotator given — open your personal link, or enter your name")
        elif self.require_token:
            raise InputError("this study asks annotators to use their personal token link")
        else:
            ann = self.store.add_annotator(key[1])
        with self._lock:
            self._annotators[key] = ann
        return ann
