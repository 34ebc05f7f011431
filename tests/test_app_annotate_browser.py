"""The annotation page in a real browser: mouse, keyboard, Back, reload/resume, XSS as text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers_human import ARTIFACTS, chromium_browser, make_study, running_server, write_export
from vislens.data.synthetic import generate_grid_world
from vislens.human.tasks import create_binary_task, create_patch_task, create_rating_task
from vislens.human.transfer import current_table
from vislens.store.annotations import AnnotationStore

pytestmark = [pytest.mark.browser, pytest.mark.slow]

XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


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
            "candidates": [
                ["a red circle", "red"],
                ["blue sky", "blue"],
                ["<b>bold</b> text", "<b>"],
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
