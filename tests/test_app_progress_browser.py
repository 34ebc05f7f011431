"""Long computations started from a page show progress, in a real browser. The network is
slowed through Chromium's DevTools (every request waits DELAY_MS), so each computation
lasts long enough to be seen: opening a study page shows the bar under the header, a lasso
a spinner over the image grid, a zoom a spinner over the scatter, and Download CSV a
spinner on its button; each goes away once the answer is on the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from helpers_app import write_seed003_cache, write_workbench_study
from helpers_human import chromium_browser, running_server
from test_app_explorer_browser import TO_PIXELS_JS, open_explorer, seed_viewer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DELAY_MS = 1500
BUSY = ".dash-spinner"


def _slow(page: Any, on: bool) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": DELAY_MS if on else 0,
         "downloadThroughput": -1, "uploadThroughput": -1},
    )  # fmt: skip


def test_explorer_shows_progress_for_selection_zoom_and_csv(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)
    cache, images = write_seed003_cache(tmp_path, 60)
    with seed_viewer(cache, images) as url, sync_playwright() as pw:
        browser = chromium_browser(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        open_explorer(page, url, 60)
        expect(page.locator(BUSY)).to_have_count(0)  # nothing computing after the first draw
        _slow(page, True)
        # A box around the dog cluster: the grid is dimmed under a spinner until it is filled.
        page.evaluate(
            "() => window.Plotly.relayout(document.querySelector('#ex-graph .js-plotly-plot'),"
            " {dragmode: 'select'})"
        )
        page.wait_for_timeout(300)
        px = lambda x, y: page.evaluate(TO_PIXELS_JS, [x, y])  # noqa: E731
        page.mouse.move(*px(7.0, -1.5))
        page.mouse.down()
        page.mouse.move(*px(12.0, 3.0), steps=8)
        page.mouse.up()
        selection = page.locator("#ex-selection")
        expect(selection.locator(BUSY)).to_have_count(1)
        expect(page.locator("#ex-grid figure").first).to_be_visible(timeout=30_000)
        expect(selection.locator(BUSY)).to_have_count(0)
        # Download CSV: the button spins while the file is written.
        with page.expect_download(timeout=30_000) as dl:
            page.locator("#ex-dl-btn").click()
            expect(page.locator("#ex-dl-btn")).to_have_attribute("data-loading", "true")
        assert dl.value.suggested_filename == "selection.csv"
        expect(page.locator("#ex-dl-btn")).not_to_have_attribute("data-loading", "true")
        # A zoom asks the server for the view: the scatter spins until the new figure is in.
        page.evaluate(
            "() => window.Plotly.relayout(document.querySelector('#ex-graph .js-plotly-plot'),"
            " {'xaxis.range': [8, 12], 'yaxis.range': [-2, 2]})"
        )
        graph_box = page.locator("#ex-graph").locator("xpath=../..")  # the spinner is a sibling
        expect(graph_box.locator(BUSY)).to_have_count(1)
        expect(graph_box.locator(BUSY)).to_have_count(0, timeout=30_000)
        browser.close()


def test_opening_a_study_page_shows_the_bar_until_it_is_drawn(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)
    root = write_workbench_study(tmp_path)
    with running_server(root) as server, sync_playwright() as pw:
        browser = chromium_browser(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server.url + "/")
        expect(page.locator("#ov-stages")).to_contain_text("4 images")
        expect(page.locator("#vl-page-busy")).to_have_count(0)
        _slow(page, True)
        page.locator("#vl-nav-features").click()
        expect(page.locator("#vl-page-busy")).to_be_visible()
        expect(page.locator("#ft-table")).to_be_visible(timeout=30_000)
        expect(page.locator("#vl-page-busy")).to_have_count(0)
        browser.close()
