"""Every page of a study's workbench in a real browser: overview, Features (table and a
feature's page), Patches (hover a cell → neighbours), Probe (pick a head), Explorer,
Annotate; and pages whose stage has not run name the command that makes it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers_app import write_workbench_study
from helpers_human import ARTIFACTS, chromium_browser, make_study, running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]
# Screenshots are test artifacts; VISLENS_UPDATE_DOC_IMAGES=1 refreshes the README's copies
# in docs/img (a plain test run never writes into the source tree).
DOC_IMG = (
    Path(__file__).resolve().parents[1] / "docs" / "img"
    if os.environ.get("VISLENS_UPDATE_DOC_IMAGES")
    else ARTIFACTS
)


def test_every_page(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)
    root = write_workbench_study(tmp_path)
    ARTIFACTS.mkdir(exist_ok=True)
    DOC_IMG.mkdir(exist_ok=True)
    with running_server(root) as server, sync_playwright() as pw:
        browser = chromium_browser(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        urls: list[str] = []  # every request of every page: the look needs no network
        page.on("request", lambda r: urls.append(r.url))

        page.goto(server.url + "/")
        expect(page.locator("#ov-stages")).to_contain_text("4 images")
        expect(page.locator("#ov-stages")).to_contain_text("run1")
        expect(page.locator("#ov-stages")).to_contain_text("not run yet")  # activations
        expect(page.locator("#ov-stages")).to_contain_text("vislens extract")
        page.screenshot(path=str(DOC_IMG / "workbench-overview.png"))

        page.goto(server.url + "/features")
        expect(page.locator("#ft-table .ag-center-cols-container .ag-row")).to_have_count(6)
        page.get_by_role("link", name="3", exact=True).click()
        expect(page.locator("#fd-label")).to_have_text("red <b>circles</b>")  # as text
        expect(page.locator("#fd-top img")).to_have_count(4)
        expect(page.locator("#fd-band .js-plotly-plot")).to_be_visible()  # calibration band
        page.wait_for_function(
            "() => [...document.querySelectorAll('#fd-top img')].every(i => i.naturalWidth > 0)"
        )
        page.screenshot(path=str(DOC_IMG / "workbench-feature.png"), full_page=True)

        page.goto(server.url + "/patches")
        page.wait_for_function(
            "() => { const gd = document.querySelector('#pt-image .js-plotly-plot'); return gd && gd._fullLayout; }"
        )
        box = page.locator("#pt-image .nsewdrag").bounding_box()
        assert box is not None
        # Hover the cell in row 2, column 7 (cells are a tenth of the plot each way).
        page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.25)
        expect(page.locator("#pt-cell")).to_contain_text("row 2, column 7")
        # The world's truth for img0 (seed 0): a red diamond in (2, 6), nothing in (2, 7).
        expect(page.locator("#pt-truth")).to_have_text("empty cell")
        page.mouse.move(box["x"] + box["width"] * 0.65, box["y"] + box["height"] * 0.25)
        expect(page.locator("#pt-truth")).to_have_text("ground truth: red diamond")
        page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.25)
        expect(page.locator("#pt-truth")).to_have_text("empty cell")
        expect(page.locator("#pt-latentlens .pt-word").first).to_have_text("w271")
        expect(page.locator("#pt-embeddinglens")).to_be_visible()
        expect(page.locator("#pt-logitlens")).to_be_visible()
        expect(page.locator("#pt-latentlens mark").first).to_have_text("w271")
        assert page.locator("#pt-latentlens i").count() == 0  # caption markup stays text
        page.screenshot(path=str(DOC_IMG / "workbench-patches.png"))

        page.goto(server.url + "/probe")
        page.wait_for_function(
            "() => { const gd = document.querySelector('#pr-heat .js-plotly-plot'); return gd && gd._fullLayout && gd._fullLayout.title.text; }"
        )
        page.locator("#pr-head").click()
        page.get_by_role("option", name="1", exact=True).click()
        page.wait_for_function(
            "() => document.querySelector('#pr-heat .js-plotly-plot')._fullLayout.title.text.includes('head 1')"
        )
        # The target's cell (evidence 27: row 2, column 7) is outlined on the heatmap.
        outline = page.evaluate(
            "() => document.querySelector('#pr-heat .js-plotly-plot')._fullLayout.shapes.map(s => [s.x0, s.y0])"
        )
        assert outline == [[6.5, 1.5]]
        expect(page.locator("#pr-rank .ag-center-cols-container .ag-row")).to_have_count(3)
        page.screenshot(path=str(DOC_IMG / "workbench-probe.png"), full_page=True)

        page.goto(server.url + "/explorer")
        expect(page.locator("#ex-count")).to_have_text("4 of 4 points match")
        page.screenshot(path=str(ARTIFACTS / "study-explorer.png"))

        page.goto(server.url + "/annotate")
        expect(page.locator("main")).to_contain_text("No annotation tasks yet")
        assert not errors, errors
        elsewhere = [u for u in urls if not u.startswith((server.url, "data:", "blob:"))]
        assert urls and not elsewhere, elsewhere
        # The page's styles are Mantine's (its variables are defined), not the browser's.
        assert page.evaluate(
            "() => getComputedStyle(document.documentElement).getPropertyValue("
            "'--mantine-primary-color-filled').trim()"
        )

        # A study with nothing run: each page names the command that makes its data.
        empty = make_study(tmp_path / "empty").root
    with running_server(empty) as server, sync_playwright() as pw:
        browser = chromium_browser(pw)
        page = browser.new_page()
        for path, command in [("/features", "vislens sae score"), ("/patches", "vislens lens neighbors"),
                              ("/probe", "vislens probe run"), ("/explorer", "vislens map")]:  # fmt: skip
            page.goto(server.url + path)
            expect(page.locator("main")).to_contain_text(command)
        browser.close()
