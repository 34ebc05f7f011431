"""Plain JSON endpoints on the workbench's Flask server (docs/app.md, "HTTP API").

A label saved here is the same event as a click on the page: both go through
``TaskSession.act``. A client that retries a POST with the same ``event_id`` (because the
answer was lost) gets the stored event back, never a second copy.
"""

from __future__ import annotations

from typing import Any

from vislens.app.context import AppContext
from vislens.errors import InputError, VislensError


def _annotator(ctx: AppContext, data: dict[str, Any]) -> Any:
    return ctx.identify(name=data.get("annotator"), token=data.get("token"))


def register_api(server: Any, ctx: AppContext) -> None:
    """Add /api/v1/... routes to a Flask app."""
    from flask import jsonify, request

    def _error(e: Exception, status: int = 400) -> Any:
        return jsonify({"error": str(e)}), status

    @server.errorhandler(VislensError)
    def _vislens_error(e: VislensError) -> Any:
        return _error(e)

    @server.get("/api/v1/tasks")
    def _tasks() -> Any:
        return jsonify(
            [
                {
                    "name": t.name,
                    "kind": t.kind,
                    "title": t.title,
                    "question": t.question,
                    "labels": t.labels,
                    "n_items": t.n_items,
                }
                for t in ctx.store.tasks()
            ]
        )

    @server.post("/api/v1/annotators")
    def _add_annotator() -> Any:
        if ctx.require_token:
            return _error(
                InputError("annotators are added with `vislens human annotator add`"), 403
            )
        data = request.get_json(silent=True) or {}
        ann = ctx.store.add_annotator(str(data.get("name", "")))
        return jsonify({"name": ann.name, "token": ann.token})

    @server.get("/api/v1/tasks/<task>/state")
    def _state(task: str) -> Any:
        session = ctx.session(task)
        ann = _annotator(ctx, dict(request.args))
        state = session.state(ann)
        out = state.to_json()
        out["item"] = state.item.payload if state.item else None
        return jsonify(out)

    @server.post("/api/v1/tasks/<task>/events")
    def _event(task: str) -> Any:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return _error(
                InputError(
                    "send a JSON object: {annotator|token, kind, item_id|position, value, event_id}"
                )
            )
        session = ctx.session(task)
        ann = _annotator(ctx, data)
        if "item_id" in data:
            item = session.item(external_id=str(data["item_id"]))
        else:
            pos = data.get("position")
            if not isinstance(pos, int):
                return _error(InputError("give 'item_id' or an integer 'position'"))
            item = session.item(position=pos)
        rec = session.act(
            ann,
            str(data.get("kind", "label")),
            item,
            data.get("value"),
            event_uuid=data.get("event_id"),
            session_id=str(data.get("session_id", "")),
        )
        out: dict[str, Any] = {"id": rec.id, "event_id": rec.event_uuid, "duplicate": rec.duplicate}
        if data.get("return_state"):
            out["state"] = session.state(ann).to_json()
        return jsonify(out)

    @server.get("/api/v1/tasks/<task>/labels")
    def _labels(task: str) -> Any:
        from vislens.human.transfer import current_table

        ctx.session(task)  # unknown task → 400 with the list of tasks
        return jsonify(current_table(ctx.store, task).to_dict("records"))
