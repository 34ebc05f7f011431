"""The annotation page in a real browser: mouse, keyboard, Back, reload/resume, XSS as text;
instructions, titles, the item list, skip and comments, wrapping, the patch crop, the layout
at 1440 × 900 and on a phone, and the finished view."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers_human import ARTIFACTS, chromium_browser, make_study, running_server, write_export
from test_app_crop import crop_boxes
from vislens.data.synthetic import generate_grid_world
from vislens.human.tasks import create_binary_task, create_patch_task, create_rating_task
from vislens.human.transfer import current_table
from vislens.store.annotations import AnnotationStore

pytestmark = [pytest.mark.browser, pytest.mark.slow]
# Screenshots are test artifacts; VISLENS_UPDATE_DOC_IMAGES=1 refreshes docs/img's copy.
DOC_IMG = (
    Path(__file__).resolve().parents[1] / "docs" / "img"
    if os.environ.get("VISLENS_UPDATE_DOC_IMAGES")
    else ARTIFACTS
)

XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
LONG_WORD = "unbroken" * 80  # 640 characters without a space
LONG_TEXT = "A very long feature description that goes on and on. " * 40 + LONG_WORD


@pytest.fixture()
def study_dir(tmp_path: Path) -> Path:
    study = make_study(tmp_path / "study")
    store = AnnotationStore.for_study(study)
    create_binary_task(
        store,
        write_export(tmp_path / "exp.json", 40),
        n=10,
        seed=42,
        name="feat",
        mode="formatting",
    )
    create_binary_task(
        store, write_export(tmp_path / "xss.json", 1, special={0: XSS}), n=1, name="xss"
    )
    create_binary_task(
        store,
        write_export(tmp_path / "long.json", 3, special={i: LONG_TEXT for i in range(3)}),
        n=3,
        name="long",
    )
    create_binary_task(store, write_export(tmp_path / "many.json", 80), n=80, name="many")
    # A patch task over the synthetic grid world (local images, 10 x 10 grid).
    world = tmp_path / "world"
    generate_grid_world(world, 2, 0)
    images = sorted((world / "images").glob("*.png"))
    instances = [
        {
            "id": f"inst{i}",
            "image_path": str(images[i]),
            "patch_row": 3,
            "patch_col": 4 + i,
            "grid": 10,
            "model": "toy",
            "layer": 2,
            "candidates": [
                ["a red circle", "red"],
                ["blue sky", "blue"],
                ["<b>bold</b> text", "<b>"],
                ["a caption " * 30 + LONG_WORD, LONG_WORD[:200]],
            ],
        }
        for i in range(2)
    ]
    (tmp_path / "data.json").write_text(json.dumps(instances))
    create_patch_task(store, tmp_path / "data.json", name="patches")
    cards = [
        {
            "feature_id": "f7",
            "label": "red things",
            "images": [str(p) for p in images],
            "heatmaps": [str(p) for p in images],
        }
    ]
    (tmp_path / "cards.json").write_text(json.dumps(cards))
    create_rating_task(store, tmp_path / "cards.json", name="ratings")
    store.close()
    return study.root


def _labels(study_dir: Path, task: str) -> dict[str, str]:
    from vislens.study import Study

    store = AnnotationStore.for_study(Study.open(study_dir))
    t = current_table(store, task)
    store.close()
    return {str(r["item_id"]): r["value"] for r in t.to_dict("records")}


def test_label_with_mouse_and_keyboard_back_and_resume(study_dir: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with running_server(study_dir) as server, sync_playwright() as pw:
        browser = chromium_browser(pw)
        page = browser.new_page()
        page.goto(f"{server.url}/annotate/feat?annotator=alice")
        expect(page.locator("#ann-item-no")).to_have_text("Item 1 / 10")
        expect(page.locator("#ann-count")).to_have_text("0 / 10")
        page.get_by_role("button", name="Related [1]").click()  # mouse
        expect(page.locator("#ann-item-no")).to_have_text("Item 2 / 10")
        expect(page.locator("#ann-count")).to_have_text("1 / 10")
        page.keyboard.press("2")  # keyboard: Not related
        expect(page.locator("#ann-item-no")).to_have_text("Item 3 / 10")
        expect(page.locator("#ann-count")).to_have_text("2 / 10")
        page.screenshot(path=str(ARTIFACTS / "annotate-binary.png"), full_page=True)
        page.keyboard.press("b")  # Back
        expect(page.locator("#ann-item-no")).to_have_text("Item 2 / 10")
        expect(page.locator("#ann-current")).to_have_text("Current label: not-related")
        assert _labels(study_dir, "feat") == {"0": "related", "1": "not-related"}

        page.reload()  # resume where alice stopped: item 2, after her Back
        expect(page.locator("#ann-item-no")).to_have_text("Item 2 / 10")
        expect(page.locator("#ann-count")).to_have_text("2 / 10")
        page.get_by_role("button", name="Related [1]").click()  # relabel → next open item
        expect(page.locator("#ann-item-no")).to_have_text("Item 3 / 10")
        assert _labels(study_dir, "feat") == {"0": "related", "1": "related"}

        page.keyboard.press("u")  # Undo acts on the item shown (3, unlabelled): nothing to pop
        page.keyboard.press("b")
        expect(page.locator("#ann-item-no")).to_have_text("Item 2 / 10")
        page.keyboard.press("u")  # pops item 2's latest label: back to not-related
        expect(page.locator("#ann-current")).to_have_text("Current label: not-related")
        assert _labels(study_dir, "feat")["1"] == "not-related"

        # Another annotator starts from the beginning, by typing a name.
        other = browser.new_page()
        other.goto(f"{server.url}/annotate/feat")
        other.fill("#ann-name", "bob")
        other.click("#ann-start")
        expect(other.locator("#ann-item-no")).to_have_text("Item 1 / 10")
        expect(other.locator("#ann-who")).to_have_text("Annotator: bob")
        browser.close()


def test_description_with_script_shows_as_text(study_dir: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with running_server(study_dir) as server, sync_playwright() as pw:
        browser = chromium_browser(pw)
        page = browser.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{server.url}/annotate/xss?annotator=eve")
        expect(page.locator("#ann-text")).to_have_text(XSS)
        assert page.evaluate("window.__pwned") is None
        assert page.locator("#ann-text script, #ann-text img").count() == 0
        assert not dialogs
        # A comment is text too, when saved and when shown again.
        page.fill("textarea.ann-comment", XSS)
        page.get_by_role("button", name="Save comment").click()
        expect(page.locator("#ann-status")).to_have_text("Comment saved.")
        page.reload()
        expect(page.locator("textarea.ann-comment")).to_have_value(XSS)
        assert page.evaluate("window.__pwned") is None
        assert page.locator("#ann-body script, #ann-body img").count() == 0
        assert not dialogs
        page.screenshot(path=str(ARTIFACTS / "annotate-xss.png"), full_page=True)
        browser.close()


def test_patch_and_rating_pages(study_dir: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with running_server(study_dir) as server, sync_playwright() as pw:
        browser = chromium_browser(pw)
        page = browser.new_page()
        page.goto(f"{server.url}/annotate/patches?annotator=carol")
        expect(page.locator("#ann-item-no")).to_have_text("Item 1 / 2")
        assert (
            page.locator("#ann-candidates").inner_text().count("<b>") == 2
        )  # word and sentence as text
        page.keyboard.press("1")  # word 1 as concrete
        page.keyboard.press("w")  # word 2 as abstract
        expect(page.locator("button.vl-on")).to_have_count(2)
        assert page.locator(".ann-word").first.get_attribute("title") == "a red circle"
        page.screenshot(path=str(ARTIFACTS / "annotate-patch.png"), full_page=True)
        page.keyboard.press("Enter")  # next
        expect(page.locator("#ann-item-no")).to_have_text("Item 2 / 2")
        page.keyboard.press("0")  # none of these → done
        expect(page.locator("#ann-done")).to_be_visible()
        labels = _labels(study_dir, "patches")
        assert labels["inst0"] == {
            "words": [
                {"word": "a red circle", "relation": "concrete"},
                {"word": "blue sky", "relation": "abstract"},
            ],
            "none": False,
        }
        assert labels["inst1"] == {"words": [], "none": True}

        page.goto(f"{server.url}/annotate/ratings?annotator=carol")
        expect(page.locator("#ann-text")).to_have_text("red things")
        page.keyboard.press("2")  # coherent: partly
        expect(page.locator("button.vl-on")).to_have_count(1)
        page.screenshot(path=str(ARTIFACTS / "annotate-rating.png"), full_page=True)
        page.keyboard.press("4")  # label: yes → done
        expect(page.locator("#ann-done")).to_be_visible()
        assert _labels(study_dir, "ratings") == {"f7": {"coherent": "partly", "label": "yes"}}
        browser.close()


def test_fast_key_presses_keep_their_order_and_stale_tabs_save_nothing(study_dir: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with running_server(study_dir) as server, sync_playwright() as pw:
        browser = chromium_browser(pw)
        page = browser.new_page()
        page.goto(f"{server.url}/annotate/feat?annotator=dan")
        expect(page.locator("#ann-item-no")).to_have_text("Item 1 / 10")
        for key in "12121":  # no waiting between presses
            page.keyboard.press(key)
        page.keyboard.press("b")
        expect(page.locator("#ann-count")).to_have_text("5 / 10")
        expect(page.locator("#ann-item-no")).to_have_text("Item 5 / 10")
        expected = {
            str(i): ("related" if k == "1" else "not-related") for i, k in enumerate("12121")
        }
        assert _labels(study_dir, "feat") == expected  # one label per item, in press order

        stale = browser.new_page()  # a second tab of the same annotator
        stale.goto(f"{server.url}/annotate/feat?annotator=dan")
        expect(stale.locator("#ann-item-no")).to_have_text("Item 5 / 10")
        page.keyboard.press("2")  # saved in the first tab: item 5 becomes not-related
        expect(page.locator("#ann-item-no")).to_have_text("Item 6 / 10")
        stale.get_by_role("button", name="Related [1]").click()
        expect(stale.locator("#ann-status")).to_contain_text("out of date")
        expect(stale.locator("#ann-item-no")).to_have_text("Item 6 / 10")
        assert _labels(study_dir, "feat")["4"] == "not-related"
        browser.close()


def test_enter_and_space_do_not_repress_a_clicked_button(study_dir: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with running_server(study_dir) as server, sync_playwright() as pw:
        browser = chromium_browser(pw)
        page = browser.new_page()
        page.goto(f"{server.url}/annotate/feat?annotator=focus")
        expect(page.locator("#ann-item-no")).to_have_text("Item 1 / 10")
        page.get_by_role("button", name="Related [1]").click()
        expect(page.locator("#ann-item-no")).to_have_text("Item 2 / 10")
        page.keyboard.press("Enter")
        page.keyboard.press(" ")
        page.wait_for_timeout(600)  # would be a request and a redraw if the keys pressed it
        expect(page.locator("#ann-item-no")).to_have_text("Item 2 / 10")
        expect(page.locator("#ann-count")).to_have_text("1 / 10")
        # Even with the focus put back on the button, Enter/Space do not press it.
        page.get_by_role("button", name="Not related [2]").focus()
        page.keyboard.press("Enter")
        page.keyboard.press(" ")
        page.wait_for_timeout(600)
        expect(page.locator("#ann-count")).to_have_text("1 / 10")
        assert _labels(study_dir, "feat") == {"0": "related"}
        browser.close()


def _events(study_dir: Path, task: str) -> list[tuple[str, int, object]]:
    from vislens.study import Study

    store = AnnotationStore.for_study(Study.open(study_dir))
    out = [(e.kind, e.position, e.value) for e in store.events(task)]
    store.close()
    return out


def _comments(study_dir: Path, task: str) -> list[dict[str, object]]:
    from vislens.human.comments import comments_table
    from vislens.study import Study

    store = AnnotationStore.for_study(Study.open(study_dir))
    out = comments_table(store, task).to_dict("records")
    store.close()
    return out


def _statuses(page: object) -> list[str]:
    return page.eval_on_selector_all(  # type: ignore[attr-defined]
        "#ann-list .ann-jump", "els => els.map(e => e.dataset.status)"
    )


def test_title_instructions_item_list_and_skip(study_dir: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with running_server(study_dir) as server, sync_playwright() as pw:
        browser = chromium_browser(pw)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{server.url}/annotate")
        # The task list shows human titles, with the task name under each.
        expect(page.locator("table.ann-tasks")).to_contain_text(
            "LatentLens words — toy, visual layer 2"
        )
        expect(page.locator("table.ann-tasks")).to_contain_text(
            "Feature descriptions about formatting — exp"
        )
        page.get_by_role("link", name="Feature descriptions about formatting — exp").click()
        expect(page.locator("#ann-name")).to_be_visible()
        page.fill("#ann-name", "una")
        page.click("#ann-start")
        expect(page.locator("#ann-title")).to_have_text(
            "Feature descriptions about formatting — exp"
        )
        expect(page.locator("#ann-question")).to_have_text(
            "Is this feature related to text formatting, structure, or presentation?"
        )
        # Instructions: open on the first visit, from the task kind, collapsible.
        panel = page.locator("#ann-instructions")
        expect(panel).to_have_attribute("open", "")
        expect(panel).to_contain_text("Related or Not related")
        expect(panel).to_contain_text("K skip")
        page.locator("#ann-instructions summary").click()
        expect(panel).not_to_have_attribute("open", "")
        expect(panel.locator("li").first).to_be_hidden()

        expect(page.locator("#ann-list .ann-jump")).to_have_count(10)
        assert _statuses(page) == ["pending"] * 10
        expect(page.locator("#ann-list .ann-here")).to_contain_text("1. feature")
        page.keyboard.press("1")
        expect(page.locator("#ann-item-no")).to_have_text("Item 2 / 10")
        page.get_by_role("button", name="Skip [K]").click()  # skip item 2 with the mouse
        expect(page.locator("#ann-item-no")).to_have_text("Item 3 / 10")
        page.keyboard.press("k")  # skip item 3 with the key
        expect(page.locator("#ann-item-no")).to_have_text("Item 4 / 10")
        expect(page.locator("#ann-skipped")).to_have_text("· 2 skipped")
        expect(page.locator("#ann-count")).to_have_text("1 / 10")
        assert _statuses(page)[:4] == ["done", "skipped", "skipped", "pending"]
        expect(page.locator("#ann-legend")).to_have_text("✓ 1 answered · ↷ 2 skipped · ○ 7 open")
        page.screenshot(path=str(ARTIFACTS / "annotate-list-skip.png"))

        # Skipped items are not served again: answering the rest moves past them.
        for _ in range(7):
            page.keyboard.press("2")
        expect(page.locator("#ann-done")).to_be_visible()
        expect(page.locator("#ann-summary")).to_have_text("8 of 10 items answered, 2 skipped.")
        # ...but any item can be revisited from the list.
        page.locator("#ann-list .ann-jump").nth(2).click()
        expect(page.locator("#ann-item-no")).to_have_text("Item 3 / 10")
        expect(page.locator("#ann-item-status")).to_have_text("skipped")
        page.keyboard.press("1")  # answered: the other skipped item is not served, so: done
        expect(page.locator("#ann-done")).to_be_visible()
        expect(page.locator("#ann-summary")).to_have_text("9 of 10 items answered, 1 skipped.")
        assert _statuses(page)[:4] == ["done", "skipped", "done", "done"]
        page.reload()  # statuses and the instructions state survive a reload
        expect(page.locator("#ann-done")).to_be_visible()
        expect(page.locator("#ann-instructions")).not_to_have_attribute("open", "")
        assert _statuses(page)[:4] == ["done", "skipped", "done", "done"]
        browser.close()
    skips = [(k, p, v) for k, p, v in _events(study_dir, "feat") if k == "next"]
    assert skips == [("next", 1, {"skipped": True}), ("next", 2, {"skipped": True})]
    labels = _labels(study_dir, "feat")
    assert "1" not in labels and labels["2"] == "related" and len(labels) == 9


def test_comment_is_stored_with_the_answer(study_dir: Path) -> None:
    import pandas as pd
    from playwright.sync_api import expect, sync_playwright

    with running_server(study_dir) as server, sync_playwright() as pw:
        browser = chromium_browser(pw)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{server.url}/annotate/feat?annotator=cora")
        expect(page.locator("#ann-item-no")).to_have_text("Item 1 / 10")
        box = page.locator("textarea.ann-comment")
        box.fill("mentions <b>tables</b> only")
        box.press("1")  # typing in the comment box is text, not a shortcut
        expect(page.locator("#ann-item-no")).to_have_text("Item 1 / 10")
        page.get_by_role("button", name="Related [1]").click()
        expect(page.locator("#ann-item-no")).to_have_text("Item 2 / 10")
        expect(box).to_have_value("")  # a fresh box for the next item
        page.keyboard.press("b")
        expect(page.locator("#ann-item-no")).to_have_text("Item 1 / 10")
        expect(box).to_have_value("mentions <b>tables</b> only1")
        expect(page.locator("#ann-comment-saved")).to_have_text("comment saved")
        # Change only the comment of an answered item.
        box.fill("tables and lists")
        page.get_by_role("button", name="Save comment").click()
        expect(page.locator("#ann-status")).to_have_text("Comment saved.")
        expect(page.locator("#ann-item-no")).to_have_text("Item 1 / 10")
        # Text typed before Back is kept; Esc leaves the box so keys are shortcuts again.
        page.locator("#ann-list .ann-jump").nth(3).click()
        expect(page.locator("#ann-item-no")).to_have_text("Item 4 / 10")
        box.fill("about headings")
        page.keyboard.press("b")  # in the box: a letter, not Back
        box.press("Escape")
        page.keyboard.press("b")
        expect(page.locator("#ann-item-no")).to_have_text("Item 3 / 10")
        page.keyboard.press("Escape")  # outside the box Escape does nothing
        expect(page.locator("#ann-item-no")).to_have_text("Item 3 / 10")
        # A skip keeps its comment too.
        page.locator("#ann-list .ann-jump").nth(1).click()
        expect(page.locator("#ann-item-no")).to_have_text("Item 2 / 10")
        box.fill("cannot tell")
        page.get_by_role("button", name="Skip [K]").click()
        expect(page.locator("#ann-item-no")).to_have_text("Item 3 / 10")
        browser.close()
    comments = {c["position"]: c for c in _comments(study_dir, "feat")}
    assert comments[0]["comment"] == "tables and lists" and comments[0]["annotator"] == "cora"
    assert comments[1]["comment"] == "cannot tell"
    assert comments[3]["comment"] == "about headingsb" and pd.isna(comments[3]["event_id"])
    events = _events(study_dir, "feat")
    # The first comment was saved with the label event; the skip's with the skip.
    from vislens.human.comments import Comment
    from vislens.study import Study

    store = AnnotationStore.for_study(Study.open(study_dir))
    with store._read() as s:
        rows = [(c.text, c.event_id) for c in s.query(Comment).order_by(Comment.id)]
    ids = {e.id: (e.kind, e.value) for e in store.events("feat")}
    store.close()
    assert rows[0][0] == "mentions <b>tables</b> only1" and ids[rows[0][1]] == ("label", "related")
    assert rows[1:3] == [("tables and lists", None), ("about headingsb", None)]
    assert rows[3][0] == "cannot tell" and ids[rows[3][1]] == ("next", {"skipped": True})
    assert ("label", 0, "related") in events


def _finished_patches(page: object, url: str) -> None:
    """Bring annotator fin's patch task to the finished view: item 1 skipped, item 2 none."""
    from playwright.sync_api import expect

    page.goto(url)  # type: ignore[attr-defined]
    loc = page.locator  # type: ignore[attr-defined]
    page.wait_for_selector("#ann-done, #ann-item-no")  # type: ignore[attr-defined]
    if loc("#ann-done").count() == 0:
        while loc("#ann-done").count() == 0:
            page.keyboard.press("k")  # type: ignore[attr-defined]
            page.wait_for_timeout(300)  # type: ignore[attr-defined]
    expect(loc("#ann-done")).to_be_visible()


def test_finished_view_has_only_working_actions(study_dir: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with running_server(study_dir) as server, sync_playwright() as pw:
        browser = chromium_browser(pw)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        url = f"{server.url}/annotate/patches?annotator=fin"
        page.goto(url)
        expect(page.locator("#ann-item-no")).to_have_text("Item 1 / 2")
        expect(page.get_by_role("button", name="← Back [B]")).to_be_disabled()  # nothing before
        expect(page.get_by_role("button", name="Undo [U]")).to_be_disabled()  # nothing to undo
        page.keyboard.press("k")
        expect(page.locator("#ann-item-no")).to_have_text("Item 2 / 2")
        page.keyboard.press("0")
        expect(page.locator("#ann-done")).to_be_visible()
        expect(page.locator("#ann-summary")).to_have_text("1 of 2 items answered, 1 skipped.")
        page.screenshot(path=str(ARTIFACTS / "annotate-finished.png"))
        # No Undo, Skip, Next or answer buttons here; the keys for them do nothing.
        expect(page.locator("#ann-body button")).to_have_count(3)
        names = page.locator("#ann-body button").all_inner_texts()
        assert names == [
            "Review skipped items (1)",
            "Revise from item 1",
            "← Back to the last item [B]",
        ]
        for key in ("u", "k", "0", "Enter"):
            page.keyboard.press(key)
        page.wait_for_timeout(500)
        expect(page.locator("#ann-done")).to_be_visible()
        n_events = len(_events(study_dir, "patches"))
        # Every button leads somewhere.
        expected = {
            "Review skipped items (1)": "Item 1 / 2",
            "Revise from item 1": "Item 1 / 2",
            "← Back to the last item [B]": "Item 2 / 2",
        }
        for name, item_no in expected.items():
            _finished_patches(page, url)
            page.get_by_role("button", name=name).click()
            expect(page.locator("#ann-item-no")).to_have_text(item_no)
            expect(page.locator("#ann-done")).to_have_count(0)
        assert len(_events(study_dir, "patches")) > n_events
        _finished_patches(page, url)
        page.keyboard.press("b")  # the shortcut of Back works here too
        expect(page.locator("#ann-item-no")).to_have_text("Item 2 / 2")
        _finished_patches(page, url)
        page.get_by_role("link", name="All annotation tasks").click()
        expect(page.locator("table.ann-tasks")).to_be_visible()
        expect(page).to_have_url(f"{server.url}/annotate")
        browser.close()


def _answer_buttons(page: object) -> list[dict[str, float]]:
    return page.eval_on_selector_all(  # type: ignore[attr-defined]
        "#ann-buttons button, #ann-nav button",
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return {x: r.x, y: r.y, w: r.width, h: r.height}; })",
    )


@pytest.mark.parametrize("task", ["feat", "long", "patches", "ratings"])
def test_layout_keeps_buttons_in_view_on_a_laptop_and_a_phone(study_dir: Path, task: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with running_server(study_dir) as server, sync_playwright() as pw:
        browser = chromium_browser(pw)
        # 1440 × 900, a new annotator: the instructions panel is open, nothing is scrolled.
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{server.url}/annotate/{task}?annotator=lap")
        expect(page.locator("#ann-item-no")).to_be_visible()
        expect(page.locator("#ann-instructions")).to_have_attribute("open", "")
        boxes = _answer_buttons(page)
        assert len(boxes) >= 3
        assert page.evaluate("window.scrollY") == 0
        for b in boxes:
            assert b["w"] > 0 and b["h"] > 0
            assert b["y"] >= 0 and b["y"] + b["h"] <= 900, (task, b)
            assert b["x"] >= 0 and b["x"] + b["w"] <= 1440, (task, b)
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1]
        page.screenshot(path=str(ARTIFACTS / f"annotate-{task}-1440x900.png"))
        if task == "patches":
            page.screenshot(path=str(DOC_IMG / "annotate-patch.png"))

        # A phone: one column, no sideways scrolling, the buttons reachable and working.
        phone = browser.new_page(
            viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
        )
        phone.goto(f"{server.url}/annotate/{task}?annotator=phone")
        expect(phone.locator("#ann-item-no")).to_be_visible()
        width = phone.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], width
        main = phone.locator(".ann-main").bounding_box()
        side = phone.locator(".ann-side").bounding_box()
        assert main is not None and side is not None
        assert side["y"] >= main["y"] + main["height"] - 1  # the item list stacks below
        for b in _answer_buttons(phone):
            assert b["x"] >= 0 and b["x"] + b["w"] <= 390, (task, b)
        for sel in ("#ann-text", "#ann-candidates", ".ann-main"):
            if phone.locator(sel).count():
                assert phone.eval_on_selector(sel, "e => e.scrollWidth <= e.clientWidth + 1"), sel
        phone.screenshot(path=str(ARTIFACTS / f"annotate-{task}-390x844.png"), full_page=True)
        if task == "feat":  # the task list and the name form fit a phone too
            for path in ("/annotate", "/annotate/patches"):
                other = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
                other.goto(server.url + path)
                expect(other.locator(".ann-page")).to_be_visible()
                width = other.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
                assert width[0] <= width[1], (path, width)
                other.close()
        first = phone.locator("#ann-buttons button").first
        first.scroll_into_view_if_needed()
        first.tap()
        if task in ("feat", "long"):
            expect(phone.locator("#ann-item-no")).to_have_text(
                f"Item 2 / {10 if task == 'feat' else 3}"
            )
        else:
            expect(phone.locator("#ann-buttons button.vl-on")).to_have_count(1)
        browser.close()
    assert _labels(study_dir, task)  # the phone's tap was saved


def test_patch_crop_outlines_the_patch_beside_the_full_image(study_dir: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with running_server(study_dir) as server, sync_playwright() as pw:
        browser = chromium_browser(pw)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        url = f"{server.url}/annotate/patches?annotator=zoe"
        full, box, crop, inner = crop_boxes(page, url, "Item 1 / 2")
        # Patch (row 3, col 4) of a 10 × 10 grid on the full image.
        assert abs(box["x"] - (full["x"] + 0.4 * full["width"])) <= 2
        assert abs(box["y"] - (full["y"] + 0.3 * full["height"])) <= 2
        assert abs(box["width"] - full["width"] / 10) <= 2
        # The crop shows 3 × 3 patches with the patch in the middle, outlined, beside the image.
        assert crop["x"] >= full["x"] + full["width"] and abs(crop["y"] - full["y"]) <= 2
        assert abs(inner["x"] - (crop["x"] + crop["width"] / 3)) <= 2
        assert abs(inner["y"] - (crop["y"] + crop["height"] / 3)) <= 2
        assert abs(inner["width"] - crop["width"] / 3) <= 2
        assert crop["width"] > 5 * box["width"]  # zoomed in
        style = page.eval_on_selector("#ann-crop", "e => getComputedStyle(e).backgroundImage")
        src = page.eval_on_selector(".ann-full-img", "e => e.src")
        assert src in style  # the crop is of the same image
        assert (
            page.eval_on_selector("#ann-crop-box", "e => getComputedStyle(e).borderTopStyle")
            == "solid"
        )
        # Long captions and words wrap inside the table; a long caption shows two lines and
        # the rest on a click.
        assert page.eval_on_selector("#ann-candidates", "e => e.scrollWidth <= e.clientWidth + 1")
        more = page.locator("#ann-candidates details.ann-more")
        expect(more).to_have_count(1)
        full = more.locator("div.ann-sentence")
        expect(full).to_be_hidden()
        clamped = more.locator(".ann-clamp").bounding_box()
        assert clamped and clamped["height"] < 45  # two lines of 13 px text
        more.get_by_text("show all").click()
        expect(full).to_be_visible()
        expect(full).to_have_text("a caption " * 30 + LONG_WORD)
        assert page.eval_on_selector("#ann-candidates", "e => e.scrollWidth <= e.clientWidth + 1")
        more.get_by_text("show less").click()
        expect(full).to_be_hidden()
        browser.close()


def test_a_save_in_flight_shows_saving(study_dir: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with running_server(study_dir) as server, sync_playwright() as pw:
        browser = chromium_browser(pw)
        page = browser.new_page()
        page.goto(f"{server.url}/annotate/feat?annotator=slow")
        expect(page.locator("#ann-item-no")).to_have_text("Item 1 / 10")
        held: list[object] = []

        def dash_update(url: str) -> bool:
            return "/_dash-update-component" in url

        page.route(dash_update, lambda route: held.append(route))
        page.get_by_role("button", name="Related [1]").click()
        page.wait_for_function("document.querySelector('#ann-count[data-dash-is-loading]')")
        after = page.eval_on_selector("#ann-count", "e => getComputedStyle(e, '::after').content")
        assert after == '" · saving…"'
        assert len(held) == 1
        held[0].continue_()  # type: ignore[attr-defined]
        page.unroute(dash_update)
        expect(page.locator("#ann-item-no")).to_have_text("Item 2 / 10")
        expect(page.locator("#ann-count[data-dash-is-loading]")).to_have_count(0)
        browser.close()


def test_a_long_item_list_scrolls_to_the_current_item(study_dir: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    from vislens.human.session import TaskSession
    from vislens.study import Study

    store = AnnotationStore.for_study(Study.open(study_dir))
    session = TaskSession(store, "many")
    ann = store.add_annotator("deep")
    for pos in range(60):
        session.act(ann, "label", session.item(position=pos), "related")
    store.close()
    with running_server(study_dir) as server, sync_playwright() as pw:
        browser = chromium_browser(pw)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{server.url}/annotate/many?annotator=deep")
        expect(page.locator("#ann-item-no")).to_have_text("Item 61 / 80")
        here = page.locator("#ann-list .ann-here")
        expect(here).to_contain_text("61. feature")
        page.wait_for_function("document.querySelector('.ann-items').scrollTop > 0")
        box, here_box = page.locator(".ann-items").bounding_box(), here.bounding_box()
        assert box and here_box
        assert (
            box["y"] <= here_box["y"]
            and here_box["y"] + here_box["height"] <= box["y"] + box["height"]
        )
        assert page.evaluate("window.scrollY") == 0  # the list scrolled, not the page
        assert _statuses(page).count("done") == 60
        browser.close()
