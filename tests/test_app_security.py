"""The annotation server closed to file reads, rebinding, impersonation and oversized input."""

from __future__ import annotations

import ast
import json
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from helpers_human import make_study, vislens_exe, write_export
from vislens.app.shell import create_app, open_study
from vislens.errors import InputError
from vislens.human.tasks import create_binary_task, create_patch_task, create_rating_task
from vislens.store.annotations import AnnotationStore, ItemSpec
from vislens.study import Study

SRC = Path(__file__).resolve().parents[1] / "src" / "vislens"


def _patch_payload(image: str) -> dict:
    return {
        "image": image,
        "patch_row": 1,
        "patch_col": 1,
        "grid": 4,
        "candidates_view": [{"word": "red", "token": "red", "sentence": "red"}],
    }


@pytest.fixture()
def setup(tmp_path: Path) -> tuple[Study, Path]:
    """A study whose task 'raw' names files inside and outside it, stored without the
    creation check (as an old database, or one written by another tool, would hold them)."""
    study = make_study(tmp_path / "st")
    (study.root / "imgs").mkdir()
    Image.new("RGB", (8, 8), "red").save(study.root / "imgs" / "ok.png")
    outside = tmp_path / "outside.png"
    Image.new("RGB", (8, 8), "blue").save(outside)
    os.symlink(outside, study.root / "imgs" / "link-out.png")
    os.symlink(study.root / "imgs" / "ok.png", study.root / "imgs" / "link-in.png")
    names = [
        "imgs/ok.png",
        str(outside),
        "../outside.png",
        "imgs/link-out.png",
        "~/outside.png",
        "/etc/passwd",
        "imgs/ok.png\x00.txt",
        "imgs/link-in.png",
        "imgs/missing.png",
    ]
    store = AnnotationStore.for_study(study)
    store.create_task(
        "raw",
        "patch",
        [ItemSpec(str(i), _patch_payload(n)) for i, n in enumerate(names)],
        question="q",
        labels=["concrete", "abstract", "global"],
        settings={"source": str(study.root / "data.json"), "image_roots": []},
    )
    create_binary_task(store, write_export(tmp_path / "e.json", 5), n=3, name="bin")
    store.close()
    return study, outside


def test_media_serves_only_files_inside_the_roots(setup: tuple[Study, Path]) -> None:
    study, _ = setup
    client = create_app(study).server.test_client()
    codes = [client.get(f"/media/raw/{i}/image").status_code for i in range(9)]
    #        ok   abs-out  ../  link-out  ~    passwd  NUL  link-in missing
    assert codes == [200, 404, 404, 404, 404, 404, 404, 200, 404]
    r = client.get("/media/raw/0/image")
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_task_creation_refuses_images_outside_the_input_folder(tmp_path: Path) -> None:
    study = make_study(tmp_path / "st")
    store = AnnotationStore.for_study(study)
    data = tmp_path / "in" / "data.json"
    data.parent.mkdir()
    Image.new("RGB", (8, 8)).save(data.parent / "a.png")
    base = {"patch_row": 0, "patch_col": 0, "grid": 4, "candidates": [["red", "red"]]}
    for bad in ("/etc/passwd", "../x.png", str(tmp_path / "in" / "nope.png")):
        data.write_text(json.dumps([{"id": "i0", "image_url": bad, **base}]))
        with pytest.raises(InputError, match="item i0"):
            create_patch_task(store, data, name="p")
        assert [t.name for t in store.tasks()] == []  # nothing stored
    cards = data.parent / "cards.json"
    cards.write_text(json.dumps([{"feature_id": 1, "images": ["a.png", "/etc/hostname"]}]))
    with pytest.raises(InputError, match="outside the allowed folders"):
        create_rating_task(store, cards, name="r")
    data.write_text(json.dumps([{"id": "i0", "image_url": str(data.parent / "a.png"), **base}]))
    task = create_patch_task(store, data, name="p")
    assert task.settings["image_roots"] == [str(data.parent.resolve())]
    store.close()
    client = create_app(study).server.test_client()
    assert client.get("/media/p/0/image").status_code == 200  # declared root is served


def test_host_header_must_name_the_bound_address(setup: tuple[Study, Path]) -> None:
    study, _ = setup
    client = create_app(study).server.test_client()
    assert client.get("/api/v1/tasks", headers={"Host": "127.0.0.1:8050"}).status_code == 200
    assert client.get("/api/v1/tasks", headers={"Host": "localhost:8050"}).status_code == 200
    assert client.get("/api/v1/tasks", headers={"Host": "evil.example:8050"}).status_code == 421
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 421
    lan = create_app(study, host="10.1.2.3").server.test_client()
    assert lan.get("/api/v1/tasks", headers={"Host": "localhost"}).status_code == 421


def test_relative_study_path_serves_images_from_anywhere(
    setup: tuple[Study, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    study, _ = setup
    monkeypatch.chdir(study.root.parent)
    app = create_app(open_study(Path(study.root.name)))
    monkeypatch.chdir("/")
    assert app.server.test_client().get("/media/raw/0/image").status_code == 200


def test_an_image_that_cannot_be_shown_blocks_labelling(setup: tuple[Study, Path]) -> None:
    from vislens.app.annotate import _render
    from vislens.app.media import missing_images

    study, _ = setup
    app = create_app(study)
    client = app.server.test_client()
    body = {"annotator": "a", "kind": "label", "value": {"words": [], "none": True}}
    assert client.post("/api/v1/tasks/raw/events", json={**body, "position": 1}).status_code == 409
    assert client.post("/api/v1/tasks/raw/events", json={**body, "position": 0}).status_code == 200
    ctx = app.vislens_context
    assert missing_images(ctx, "raw", 0) == []
    assert missing_images(ctx, "raw", 5) == ["/etc/passwd"]
    session = ctx.session("raw")
    state = session.state(ctx.identify(name="a"))
    page = str(_render(session, state, missing_images(ctx, "raw", state.position)))
    assert "ann-blocked" in page and "cannot be labelled" in page


def test_the_api_treats_a_blocked_item_as_the_page_does(setup: tuple[Study, Path]) -> None:
    """Skip, undo, back and comments are allowed on an item whose image cannot be shown;
    a label, or `next` that is not a skip, is 409 — the page's rule (`_apply`)."""
    from vislens.app.annotate import _apply

    study, _ = setup
    app = create_app(study)
    client = app.server.test_client()
    ev = "/api/v1/tasks/raw/events"
    who = {"annotator": "b", "position": 1}
    for refused in ({"kind": "label", "value": {"words": [], "none": True}}, {"kind": "next"}):
        r = client.post(ev, json={**who, **refused})
        assert r.status_code == 409 and "cannot be labelled" in r.json["error"]
    r = client.post(
        ev,
        json={**who, "kind": "next", "value": {"skipped": True}, "comment": " image broken ",
              "event_id": "b-skip-1", "return_state": True},
    )  # fmt: skip
    assert r.status_code == 200 and r.json["comment_saved"] is True
    assert r.json["state"]["n_skipped"] == 1 and r.json["state"]["position"] == 2
    # The same event again (a retry) is stored once, and its comment is not saved again.
    again = client.post(
        ev, json={**who, "kind": "next", "value": {"skipped": True}, "comment": "image broken",
                  "event_id": "b-skip-1"},
    )  # fmt: skip
    assert again.json["duplicate"] is True and again.json["comment_saved"] is False
    assert client.post(ev, json={**who, "kind": "undo"}).status_code == 200
    assert client.post(ev, json={**who, "kind": "back"}).status_code == 200
    c = client.post(
        "/api/v1/tasks/raw/comments", json={**who, "comment": "still broken"}
    )  # a comment alone, as the page's Save comment
    assert c.status_code == 200 and c.json == {
        "item_id": "1",
        "comment": "still broken",
        "saved": True,
    }
    rows = client.get("/api/v1/tasks/raw/comments").json
    assert [(x["annotator"], x["item_id"], x["comment"]) for x in rows] == [
        ("b", "1", "still broken")
    ]
    # The page refuses and allows exactly the same.
    ctx = app.vislens_context
    session, ann = ctx.session("raw"), ctx.identify(name="c")
    for action, value in (("label", ""), ("none", ""), ("word", "0|concrete"), ("next", "")):
        with pytest.raises(InputError, match="cannot be labelled"):
            _apply(session, ann, action, value, 1, blocked=True)
    for action in ("comment", "skip", "undo"):
        _apply(session, ann, action, "", 1, blocked=True, comment="x")


def test_comments_over_http_are_checked_before_anything_is_written(
    setup: tuple[Study, Path],
) -> None:
    study, _ = setup
    client = create_app(study).server.test_client()
    body = {"annotator": "d", "position": 0, "kind": "label", "value": {"words": [], "none": True}}
    r = client.post("/api/v1/tasks/raw/events", json={**body, "comment": "x" * 2001})
    assert r.status_code == 400 and "comment" in r.json["error"]
    assert client.get("/api/v1/tasks/raw/labels").json == []  # no label half-written
    assert (
        client.post(
            "/api/v1/tasks/raw/comments", json={"annotator": "d", "comment": "x"}
        ).status_code
        == 400
    )
    r = client.post(
        "/api/v1/tasks/raw/comments", json={"annotator": "d", "position": 0, "comment": 5}
    )
    assert r.status_code == 400 and "comment" in r.json["error"]
    assert client.get("/api/v1/tasks/nope/comments").status_code == 400


def test_no_existing_token_is_handed_out(setup: tuple[Study, Path]) -> None:
    study, _ = setup
    app = create_app(study)
    client = app.server.test_client()
    first = client.post("/api/v1/annotators", json={"name": "bob"})
    assert first.status_code == 200 and first.json["token"]
    again = client.post("/api/v1/annotators", json={"name": "bob"})
    assert again.status_code == 409 and first.json["token"] not in again.get_data(as_text=True)


def test_tokens_are_required_beyond_loopback(setup: tuple[Study, Path]) -> None:
    study, _ = setup
    app = create_app(study, host="0.0.0.0")
    client = app.server.test_client()
    r = client.post(
        "/api/v1/tasks/bin/events",
        json={"annotator": "mallory", "position": 0, "value": "related"},
    )
    assert r.status_code == 400 and "token" in r.json["error"]
    assert client.get("/api/v1/tasks").status_code == 401
    assert client.get("/api/v1/tasks/bin/labels").status_code == 401
    assert client.get("/api/v1/tasks?token=forged").status_code == 401
    assert client.post("/api/v1/annotators", json={"name": "x"}).status_code == 403
    token = app.vislens_context.store.add_annotator("kim").token
    assert client.get(f"/api/v1/tasks?token={token}").status_code == 200
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/tasks/bin/labels", headers=auth).status_code == 200
    r = client.post(
        "/api/v1/tasks/bin/events", json={"token": token, "position": 0, "value": "related"}
    )
    assert r.status_code == 200
    # On loopback, reading needs no token (one person on their own machine).
    assert create_app(study).server.test_client().get("/api/v1/tasks").status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b'{"name": ' + json.dumps("x" * 5000).encode() + b"}", 400, "at most 100"),
        (b'{"name": ["bob"]}', 400, "name"),
        (b'{"name": 7}', 400, "name"),
        (b'{"name": "a", "admin": true}', 400, "admin"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "nested"),
        (b'{"name": {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}}', 400, "nested"),
        (b"not json", 400, "not JSON"),
        (b'{"name": "' + b"y" * (1024 * 1024) + b'"}', 413, "over"),
    ],
)
def test_bodies_are_validated_strictly_and_never_echoed(
    setup: tuple[Study, Path], body: bytes, status: int, needle: str
) -> None:
    study, _ = setup
    client = create_app(study).server.test_client()
    r = client.post("/api/v1/annotators", data=body, content_type="application/json")
    assert r.status_code == status and needle in r.json["error"]
    assert len(r.get_data()) < 1000  # the value sent is not echoed
    names = {a.name for a in AnnotationStore.for_study(study).annotators()}
    assert not any(len(n) > 100 for n in names)


def test_event_value_depth_and_types(setup: tuple[Study, Path]) -> None:
    study, _ = setup
    client = create_app(study).server.test_client()
    deep: object = "related"
    for _ in range(10):
        deep = [deep]
    for body in (
        {"annotator": "a", "position": 0, "value": deep},
        {"annotator": "a", "position": True, "value": "related"},
        {"annotator": "a", "position": "0", "value": "related"},
        {"annotator": "a", "position": 0, "value": "related", "return_state": "yes"},
    ):
        r = client.post("/api/v1/tasks/bin/events", json=body)
        assert r.status_code == 400, body
    assert client.get("/api/v1/tasks/bin/labels").json == []


def test_serve_on_a_folder_without_study_errors_before_any_url(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = subprocess.run(
        [vislens_exe(), "serve", str(tmp_path / "empty"), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 2 and "http://" not in out and "not a study" in out
    assert "Traceback" not in out


def test_waitress_by_default_and_the_dev_server_only_with_debug(
    setup: tuple[Study, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import waitress.server

    from vislens.app import shell

    study, _ = setup
    calls: list[str] = []

    class FakeServer:
        def run(self) -> None:
            calls.append("waitress")

    monkeypatch.setattr(waitress.server, "create_server", lambda *a, **k: FakeServer())
    monkeypatch.setattr("flask.Flask.run", lambda *a, **k: calls.append("flask-dev"))
    shell.serve(study.root, port=1, on_ready=lambda: calls.append("ready"))
    shell.serve(study.root, port=1, debug=True)
    assert calls == ["ready", "waitress", "flask-dev"]


def test_annotate_and_shell_do_not_import_each_other() -> None:
    def imports(path: Path) -> set[str]:
        tree = ast.parse(path.read_text())
        out = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                out.add(node.module)
            elif isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
        return out

    assert "vislens.app.shell" not in imports(SRC / "app" / "annotate.py")
    assert not any(m.startswith("vislens.app.shell") for m in imports(SRC / "app" / "pages.py"))


def test_a_sample_inside_a_study_may_name_the_study_images(tmp_path: Path) -> None:
    study = make_study(tmp_path / "st")
    images = tmp_path / "elsewhere" / "images"
    images.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(images / "a.png")
    study.config.images.source = str(images)
    study.save()
    data = study.root / "lens" / "sample" / "instances.json"
    data.parent.mkdir(parents=True)
    base = {"patch_row": 0, "patch_col": 0, "grid": 4, "candidates": [["red", "red"]]}
    data.write_text(json.dumps([{"id": "i0", "image_url": str(images / "a.png"), **base}]))
    store = AnnotationStore.for_study(study)
    task = create_patch_task(store, data, name="s")
    assert str(images.resolve()) in task.settings["image_roots"]
    outside = tmp_path / "x.png"
    Image.new("RGB", (8, 8)).save(outside)
    data.write_text(json.dumps([{"id": "i0", "image_url": str(outside), **base}]))
    with pytest.raises(InputError, match="outside the allowed folders"):
        create_patch_task(store, data, name="s2")
    store.close()
