"""The explorer in a real browser, started exactly as seed 003's viewer: click a point and
see its image and rationale, lasso a cluster and see its grid, change the colour."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers_app import write_seed003_cache
from helpers_human import ARTIFACTS, chromium_browser, free_port, vislens_exe

pytestmark = [pytest.mark.browser, pytest.mark.slow]
# VISLENS_UPDATE_DOC_IMAGES=1 refreshes docs/img's copy of the lasso screenshot.
DOC_IMG = (
    Path(__file__).resolve().parents[1] / "docs" / "img"
    if os.environ.get("VISLENS_UPDATE_DOC_IMAGES")
    else ARTIFACTS
)

TO_PIXELS_JS = """
([x, y]) => {
  const gd = document.querySelector('#ex-graph .js-plotly-plot');
  const fl = gd._fullLayout, box = gd.getBoundingClientRect();
  return [box.left + fl.margin.l + fl.xaxis.l2p(x), box.top + fl.margin.t + fl.yaxis.l2p(y)];
}
"""


@contextlib.contextmanager
def seed_viewer(cache: Path, images: Path) -> Iterator[str]:
    """`vislens view` with seed 003's README invocation (serving images from a folder)."""
    port = free_port()
    log = open(cache.parent / "view.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [vislens_exe(), "view", "--cache_dir", str(cache), "--coords_file", "vis_umap_coords.npy",
         "--image_dir", str(images), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "VISLENS_NO_PROGRESS": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((cache.parent / "view.log").read_text()[-2000:])
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def open_explorer(page: Any, url: str, n: int) -> None:
    """Open the explorer and wait until its scatter (four label traces) is drawn."""
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.locator("#ex-count")).to_have_text(f"{n} of {n} points match")
    page.wait_for_function(
        "() => { const gd = document.querySelector('#ex-graph .js-plotly-plot');"
        " return gd && gd._fullData && gd._fullData.length >= 4; }"
    )


def _px(page: Any, x: float, y: float) -> tuple[float, float]:
    px, py = page.evaluate(TO_PIXELS_JS, [x, y])
    return float(px), float(py)


def test_click_lasso_and_colour(tmp_path: Path) -> None:
    import numpy as np
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)  # a loaded CI machine; no timing is asserted
    cache, images = write_seed003_cache(tmp_path, 60)
    coords = np.load(cache / "vis_umap_coords.npy")
    ARTIFACTS.mkdir(exist_ok=True)
    with seed_viewer(cache, images) as url, sync_playwright() as pw:
        browser = chromium_browser(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        open_explorer(page, url, 60)
        page.wait_for_timeout(300)
        # Click point 0 (a misclassified "cat"): its image and the LLM's rationale appear.
        page.mouse.click(*_px(page, float(coords[0, 0]), float(coords[0, 1])))
        expect(page.locator("#ex-prediction")).to_have_text("misclassification")
        expect(page.locator("#ex-score")).to_have_text("2")
        expect(page.locator("#ex-why")).to_have_text("looks like a dog <i>0</i>")  # as text
        expect(page.locator("#ex-image")).to_have_attribute("src", "/images/plot_00000.png")
        page.wait_for_function("() => document.querySelector('#ex-image').naturalWidth === 32")
        page.screenshot(path=str(ARTIFACTS / "explorer-click.png"))

        # Lasso around the "dog" cluster at (10, 0): the grid shows exactly those 15 images.
        page.evaluate(
            "() => window.Plotly.relayout(document.querySelector('#ex-graph .js-plotly-plot'),"
            " {dragmode: 'lasso'})"
        )  # what the modebar's lasso button does
        # The ring's corners stay inside the axes (a press outside them starts no lasso).
        (x0, x1), (y0, y1) = page.evaluate(
            "() => { const fl = document.querySelector('#ex-graph .js-plotly-plot')._fullLayout;"
            " return [fl.xaxis.range, fl.yaxis.range]; }"
        )
        lo, hi = max(-4.0, y0 + 0.05 * (y1 - y0)), 4.0
        right = min(14.0, x1 - 0.05 * (x1 - x0))
        ring = [(6.0, lo), (right, lo), (right, hi), (6.0, hi), (6.0, lo + 0.1)]
        dogs = (
            (coords[:, 0] > 6) & (coords[:, 0] < right) & (coords[:, 1] > lo) & (coords[:, 1] < hi)
        )
        n_dogs = int(dogs.sum())
        assert n_dogs >= 10 and set(np.flatnonzero(dogs) % 4) == {1}  # all dogs
        page.mouse.move(*_px(page, *ring[0]))
        page.mouse.down()
        for pt in ring[1:]:
            page.mouse.move(*_px(page, *pt), steps=8)
        page.mouse.up()
        expect(page.locator("#ex-sel-info")).to_contain_text(f"{n_dogs} selected")
        expect(page.locator("#ex-grid figure")).to_have_count(n_dogs)
        expect(page.locator("#ex-grid figcaption").first).to_have_text("dog")
        expect(page.locator("#ex-table .ag-center-cols-container .ag-row")).to_have_count(n_dogs)
        page.screenshot(path=str(DOC_IMG / "explorer-lasso.png"), full_page=True)

        # Colour by a continuous column: one trace with a colour bar instead of the legend.
        page.locator("#ex-color").click()
        page.get_by_role("option", name="quality", exact=True).click()
        page.wait_for_function(
            "() => { const gd = document.querySelector('#ex-graph .js-plotly-plot');"
            " return gd._fullData.filter(t => t.type === 'scattergl').length === 1"
            " && gd._fullData[0].marker.showscale; }"
        )
        expect(page.locator("#ex-graph .colorbar")).to_have_count(1)
        page.screenshot(path=str(ARTIFACTS / "explorer-colour.png"))
        browser.close()
