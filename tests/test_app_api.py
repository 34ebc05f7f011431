"""The workbench's JSON endpoints and shell, through Flask's test client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers_human import make_study, write_export
from vislens.app.shell import Page, create_app, register_page
from vislens.human.config import AnnotationsConfig
from vislens.human.tasks import create_binary_task, create_rating_task
from vislens.store.annotations import AnnotationStore
from vislens.study import Study


@pytest.fixture()
def study(tmp_path: Path) -> Study:
    st = make_study(tmp_path / "st")
    store = AnnotationStore.for_study(st)
    create_binary_task(store, write_export(tmp_path / "e.json", 12), n=4, name="t")
    img = tmp_path / "img.png"
    from PIL import Image

    Image.new("RGB", (8, 8), "red").save(img)
    (tmp_path / "cards.json").write_text(
        json.dumps([{"feature_id": 3, "label": "red", "images": ["img.png"]}])
    )
    create_rating_task(store, tmp_path / "cards.json", name="r")
    store.close()
    return st


def test_label_flow_over_http(study: Study) -> None:
    client = create_app(study).server.test_client()
    tasks = client.get("/api/v1/tasks").json
    assert {t["name"] for t in tasks} == {"t", "r"}
    state = client.get("/api/v1/tasks/t/state?annotator=ann").json
    assert state["position"] == 0 and state["n_items"] == 4 and state["item"]["description"]
    r = client.post(
        "/api/v1/tasks/t/events",
        json={
            "annotator": "ann",
            "item_id": "0",
            "kind": "label",
            "value": "related",
            "return_state": True,
        },
    )
    assert (
        r.status_code == 200 and r.json["state"]["position"] == 1 and r.json["state"]["n_done"] == 1
    )
    r = client.post(
        "/api/v1/tasks/t/events", json={"annotator": "ann", "position": 1, "kind": "back"}
    )
    assert r.status_code == 200
    assert client.get("/api/v1/tasks/t/state?annotator=ann").json["position"] == 1
    labels = client.get("/api/v1/tasks/t/labels").json
    assert [(x["annotator"], x["item_id"], x["value"]) for x in labels] == [("ann", "0", "related")]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"annotator": "a", "position": 0, "kind": "label", "value": "maybe"},
            "'maybe' is not one of",
        ),
        ({"annotator": "a", "position": 9, "kind": "label", "value": "related"}, "outside 0..3"),
        (
            {"annotator": "a", "item_id": "nope", "kind": "label", "value": "related"},
            "no item 'nope'",
        ),
        ({"annotator": "a", "position": 0, "kind": "erase"}, "not one of label, undo"),
        ({"annotator": "a", "position": True, "kind": "label", "value": "related"}, "position"),
        ({"annotator": ["a"], "position": 0, "kind": "label"}, "annotator"),
        ({"annotator": "a", "position": 0, "colour": "red"}, "colour: Extra inputs"),
        ({"position": 0, "kind": "label", "value": "related"}, "no annotator given"),
        ({"annotator": "a", "kind": "label"}, "give 'item_id'"),
    ],
)
def test_bad_requests_are_400_with_a_reason(study: Study, body: dict, message: str) -> None:
    client = create_app(study).server.test_client()
    r = client.post("/api/v1/tasks/t/events", json=body)
    assert r.status_code == 400 and message in r.json["error"]
    assert client.post("/api/v1/tasks/nope/events", json=body).status_code == 400


def test_token_links_are_required_when_configured(study: Study) -> None:
    study.config.annotations = AnnotationsConfig(require_token=True)
    app = create_app(study)
    client = app.server.test_client()
    r = client.post(
        "/api/v1/tasks/t/events",
        json={"annotator": "a", "position": 0, "kind": "label", "value": "related"},
    )
    assert r.status_code == 400 and "token link" in r.json["error"]
    assert client.post("/api/v1/annotators", json={"name": "x"}).status_code == 403
    token = app.vislens_context.store.add_annotator("kim").token
    r = client.post(
        "/api/v1/tasks/t/events",
        json={"token": token, "position": 0, "kind": "label", "value": "related"},
    )
    assert r.status_code == 200
    r = client.post(
        "/api/v1/tasks/t/events",
        json={"token": "forged", "position": 0, "kind": "label", "value": "related"},
    )
    assert r.status_code == 400


def test_media_serves_only_files_items_name(study: Study) -> None:
    client = create_app(study).server.test_client()
    r = client.get("/media/r/0/img0")
    assert r.status_code == 200 and r.data[:4] == b"\x89PNG"
    assert client.get("/media/r/0/img5").status_code == 404
    assert client.get("/media/r/3/img0").status_code == 404
    assert client.get("/media/t/0/image").status_code == 404
    sneaky = client.get("/media/r/0/..%2f..%2fstudy.toml")  # falls through to the Dash shell
    assert b"schema_version" not in sneaky.data and b"[annotations]" not in sneaky.data


def test_pages_plug_into_the_shared_navigation(study: Study) -> None:
    from dash import html

    from vislens.app import pages

    register_page(Page("/hello", "Hello", lambda ctx, sub, q: html.Div(f"hello {sub}", id="x")))
    try:
        app = create_app(study)
    finally:
        pages._EXTRA_PAGES.clear()
    nav = app.layout["vl-nav"]
    assert [a.label for a in nav.children][-1] == "Hello"
    assert [a.active for a in nav.children] == [True] + [False] * (len(nav.children) - 1)
    client = app.server.test_client()
    assert client.get("/hello").status_code == 200  # Dash serves the shell for any path


def test_serve_binds_localhost_by_default() -> None:
    import inspect

    from vislens.app.commands import serve_cmd
    from vislens.app.shell import serve

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(serve_cmd).parameters["port"].default == 8050
    assert inspect.signature(serve_cmd).parameters["host"].default == "127.0.0.1"
