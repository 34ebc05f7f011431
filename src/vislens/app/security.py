"""What every response of the workbench's Flask server gets: a Host check against the
address it is bound to (a page on another site cannot reach it through DNS rebinding), and
headers that stop browsers from sniffing types or framing the pages."""

from __future__ import annotations

import ipaddress
from typing import Any

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, extra: tuple[str, ...] = ()) -> set[str] | None:
    """Host names the server answers to, or None for any (bound to every interface)."""
    if host in ("0.0.0.0", "::", ""):
        return None if not extra else set(extra)
    names = {host.strip("[]"), *extra}
    if is_loopback(host):
        names.update(LOOPBACK_NAMES)
    return names


def _host_name(header: str) -> str:
    header = header.strip().lower()
    if header.startswith("["):  # [::1]:8050
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def install(server: Any, hosts: set[str] | None) -> None:
    """Add the Host check (when ``hosts`` is a set) and the security headers to a Flask app."""
    from flask import abort, request

    if hosts is not None:
        lowered = {h.lower() for h in hosts}

        @server.before_request
        def _check_host() -> None:
            if _host_name(request.headers.get("Host", "")) not in lowered:
                abort(421)

    @server.after_request
    def _headers(resp: Any) -> Any:
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        return resp
