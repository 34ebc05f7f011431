"""Serving files from one directory without ever leaving it.

A name from a URL (already percent-decoded once by the router) is joined to the directory
with werkzeug's ``safe_join`` (which refuses absolute names, ``..`` segments and
backslashes), then resolved with symlinks followed and checked to lie inside the
directory — a symlink inside that points out is refused too. NUL bytes are refused before
anything touches the file system. Anything refused is a plain 404: the answer says nothing
about what exists outside.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def safe_file(directory: Path, name: str) -> Path | None:
    """The regular file ``name`` names inside ``directory``, or None."""
    from werkzeug.security import safe_join

    if not name or "\x00" in name or ("%" in name and "%2" in name.lower()):
        # '%2e%2e' arriving here was double-encoded: refuse rather than decode again.
        return None
    joined = safe_join(str(directory), name)
    if joined is None:
        return None
    root = Path(directory).resolve()
    try:
        real = Path(joined).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    if not real.is_file() or not real.is_relative_to(root):
        return None
    return real


def register_image_route(server: Any, directory: Path, prefix: str = "/images") -> None:
    """GET <prefix>/<path:name>: a file under ``directory`` (seed 003's image route)."""
    from flask import abort, send_file

    @server.route(f"{prefix}/<path:name>", endpoint=f"files_{prefix.strip('/')}")
    def _file(name: str) -> Any:
        path = safe_file(directory, name)
        if path is None:
            abort(404)
        return send_file(path, max_age=3600)
