"""Plain JSON endpoints on the workbench's Flask server (docs/app.md, "HTTP API").

A label saved here is the same event as a click on the page: both go through
``TaskSession.act``. A client that retries a POST with the same ``event_id`` (because the
answer was lost) gets the stored event back, never a second copy.
"""

from __future__ import annotations

from typing import Any

from vislens.app.annotate_actions import BLOCKED, answers_the_item, save_comment
from vislens.app.bodies import (
    MAX_BODY_BYTES,
    MAX_ID,
    AnnotatorBody,
    CommentBody,
    EventBody,
    parse_body,
)
from vislens.app.context import AppContext
from vislens.app.media import missing_images
from vislens.errors import InputError, VislensError


def _annotator(ctx: AppContext, annotator: str | None, token: str | None) -> Any:
    for what, v in (("annotator", annotator), ("token", token)):
        if v is not None and len(v) > MAX_ID:
            raise InputError(f"{what}: longer than {MAX_ID} characters")
    return ctx.identify(name=annotator, token=token)


def _token_of(request: Any) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return str(auth[len("Bearer ") :].strip())
    return request.args.get("token")


def _item(session: Any, body: EventBody | CommentBody) -> Any:
    if body.item_id is not None:
        return session.item(external_id=body.item_id)
    if body.position is None:
        raise InputError("give 'item_id' or an integer 'position'")
    return session.item(position=body.position)


def _target(ctx: AppContext, task: str, body: EventBody | CommentBody, request: Any) -> Any:
    """``(session, annotator, item)`` a request body names."""
    session = ctx.session(task)
    ann = _annotator(ctx, body.annotator, body.token or _token_of(request))
    return session, ann, _item(session, body)


def register_api(server: Any, ctx: AppContext) -> None:
    """Add /api/v1/... routes to a Flask app."""
    from flask import jsonify, request

    server.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    def _error(e: Exception, status: int = 400) -> Any:
        msg = str(e)
        return jsonify({"error": msg if len(msg) <= 500 else msg[:500] + "…"}), status

    @server.errorhandler(VislensError)
    def _vislens_error(e: VislensError) -> Any:
        return _error(e)

    @server.errorhandler(PermissionError)
    def _forbidden(e: PermissionError) -> Any:
        return _error(e, 401)

    @server.errorhandler(413)
    def _too_large(e: Any) -> Any:
        return _error(InputError(f"request body is over {MAX_BODY_BYTES} bytes"), 413)

    @server.get("/api/v1/tasks")
    def _tasks() -> Any:
        ctx.check_reader(_token_of(request))
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
        body = parse_body(request.get_data(), AnnotatorBody)
        name = body.name.strip()
        if name in {a.name for a in ctx.store.annotators()}:
            # Returning the existing token would let anyone act as that annotator.
            return _error(InputError("an annotator with this name exists — pick another name"), 409)
        ann = ctx.store.add_annotator(name)
        return jsonify({"name": ann.name, "token": ann.token})

    @server.get("/api/v1/tasks/<task>/state")
    def _state(task: str) -> Any:
        session = ctx.session(task)
        ann = _annotator(ctx, request.args.get("annotator"), _token_of(request))
        state = session.state(ann)
        out = state.to_json()
        out["item"] = state.item.payload if state.item else None
        return jsonify(out)

    @server.post("/api/v1/tasks/<task>/events")
    def _event(task: str) -> Any:
        from vislens.human.comments import clean_comment

        body = parse_body(request.get_data(), EventBody)
        session, ann, item = _target(ctx, task, body, request)
        # As on the page: an item whose image cannot be shown may be skipped, undone,
        # left and commented, not answered.
        if answers_the_item(body.kind, body.value) and missing_images(ctx, task, item.position):
            return _error(InputError(f"{BLOCKED} — skip it instead"), 409)
        text = None if body.comment is None else clean_comment(body.comment)
        rec = session.act(
            ann,
            body.kind,
            item,
            body.value,
            event_uuid=body.event_id,
            session_id=body.session_id,
        )
        out: dict[str, Any] = {"id": rec.id, "event_id": rec.event_uuid, "duplicate": rec.duplicate}
        if text is not None:
            out["comment_saved"] = not rec.duplicate and save_comment(
                session, ann, item.position, text, rec.id
            )
        if body.return_state:
            out["state"] = session.state(ann).to_json()
        return jsonify(out)

    @server.post("/api/v1/tasks/<task>/comments")
    def _comment(task: str) -> Any:
        from vislens.human.comments import clean_comment

        body = parse_body(request.get_data(), CommentBody)
        session, ann, item = _target(ctx, task, body, request)
        text = clean_comment(body.comment)
        saved = save_comment(session, ann, item.position, text, None)
        return jsonify({"item_id": item.external_id, "comment": text, "saved": saved})

    @server.get("/api/v1/tasks/<task>/comments")
    def _comments(task: str) -> Any:
        from vislens.human.comments import comments_table

        ctx.check_reader(_token_of(request))
        table = comments_table(ctx.store, task)
        table["event_id"] = table["event_id"].astype(object).where(table["event_id"].notna(), None)
        return jsonify(table.to_dict("records"))

    @server.get("/api/v1/tasks/<task>/labels")
    def _labels(task: str) -> Any:
        from vislens.human.transfer import current_table

        ctx.check_reader(_token_of(request))
        ctx.session(task)  # unknown task → 400 with the list of tasks
        return jsonify(current_table(ctx.store, task).to_dict("records"))
