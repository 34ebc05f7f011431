"""Explorer responsiveness in headless Chromium: navigation → drawn scatter, and lasso →
image grid, for `vislens view` beside a plain Plotly scattergl page of the same points.

    python bench/explorer.py [--quick]      # --quick: 10k and 100k points; else also 1M

The reference page holds every point in the browser (what FiftyOne's panel does); the
explorer sends at most its budget of points (a density layer for the rest) and computes
the selection on the server from the lasso polygon.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from helpers_app import write_seed003_cache  # noqa: E402
from helpers_human import chromium_browser  # noqa: E402
from test_app_explorer_browser import seed_viewer  # noqa: E402

GD = "document.querySelector('{sel}')"
RING = [(7.0, -1.5), (13.0, -1.5), (13.0, 1.5), (7.0, 1.5), (7.0, -1.4)]


def _px(page: Any, sel: str, x: float, y: float) -> tuple[float, float]:
    js = (
        "([x, y]) => { const gd = " + GD.format(sel=sel) + "; const fl = gd._fullLayout,"
        " b = gd.getBoundingClientRect();"
        " return [b.left + fl.margin.l + fl.xaxis.l2p(x), b.top + fl.margin.t + fl.yaxis.l2p(y)]; }"
    )
    px, py = page.evaluate(js, [x, y])
    return float(px), float(py)


def _lasso(page: Any, sel: str) -> None:
    page.evaluate("() => window.Plotly.relayout(" + GD.format(sel=sel) + ", {dragmode: 'lasso'})")
    page.wait_for_timeout(300)
    page.mouse.move(*_px(page, sel, *RING[0]))
    page.mouse.down()
    for pt in RING[1:]:
        page.mouse.move(*_px(page, sel, *pt), steps=4)


def bench_explorer(browser: Any, cache: Path, images: Path) -> tuple[float, float]:
    with seed_viewer(cache, images) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_function(
            "() => { const gd = document.querySelector('#ex-graph .js-plotly-plot');"
            " return gd && gd._fullData && gd._fullData.length >= 4; }",
            timeout=120_000,
        )
        page.evaluate(
            "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
        )
        draw = time.perf_counter() - t0
        _lasso(page, "#ex-graph .js-plotly-plot")
        t1 = time.perf_counter()
        page.mouse.up()
        page.wait_for_function(
            "() => document.querySelectorAll('#ex-grid figure').length > 0", timeout=120_000
        )
        select = time.perf_counter() - t1
        page.close()
    return draw, select


def bench_reference(
    browser: Any, coords: np.ndarray, labels: list[str], root: Path
) -> tuple[float, float]:
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Scattergl(
            x=coords[:, 0], y=coords[:, 1], mode="markers", text=labels, marker={"size": 3}
        )
    )
    fig.update_layout(margin={"l": 30, "r": 10, "t": 30, "b": 30})
    html = fig.to_html(
        include_plotlyjs=True, full_html=True, div_id="ref", config={"displaylogo": False}
    )
    (root / "ref.html").write_text(html)
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        t0 = time.perf_counter()
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/ref.html")
        page.wait_for_function(
            "() => { const gd = document.getElementById('ref'); return gd && gd._fullData; }",
            timeout=120_000,
        )
        page.evaluate(
            "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
        )
        draw = time.perf_counter() - t0
        page.evaluate(
            "() => { window.__sel = 0; document.getElementById('ref').on('plotly_selected', () => { window.__sel = 1; }); }"
        )
        _lasso(page, "#ref")
        t1 = time.perf_counter()
        page.mouse.up()
        page.wait_for_function("() => window.__sel === 1", timeout=120_000)
        select = time.perf_counter() - t1
        page.close()
    finally:
        server.shutdown()
    return draw, select


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="10k and 100k points only")
    ap.add_argument(
        "--reference-max", type=int, default=100_000,
        help="largest size the all-points Plotly page is timed at (its HTML grows with n)",
    )  # fmt: skip
    args = ap.parse_args()
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    from playwright.sync_api import sync_playwright

    from vislens.app.explorer import DEFAULT_BUDGET

    results = []
    with sync_playwright() as pw:
        browser = chromium_browser(pw)
        for n in sizes:
            with tempfile.TemporaryDirectory(prefix="vislens-bench-") as tmp:
                cache, images = write_seed003_cache(Path(tmp), n, n_images=48)
                coords = np.load(cache / "vis_umap_coords.npy")
                import pandas as pd

                labels = pd.read_csv(cache / "metadata.csv")["file_name"].tolist()
                e_draw, e_sel = bench_explorer(browser, cache, images)
                r_draw = r_sel = float("nan")
                if n <= args.reference_max:
                    r_draw, r_sel = bench_reference(browser, coords, labels, Path(tmp))
            results.append({"n": n, "explorer_draw_s": e_draw, "explorer_lasso_to_grid_s": e_sel,
                            "plotly_draw_s": r_draw, "plotly_lasso_to_selected_s": r_sel})  # fmt: skip
            print(json.dumps(results[-1]), flush=True)
        browser.close()
    print(f"explorer budget: {DEFAULT_BUDGET:,} points drawn at most")
    print(
        f"{'points':>10}{'explorer draw s':>17}{'lasso→grid s':>14}{'plotly draw s':>15}{'lasso→selected s':>18}"
    )
    for r in results:
        print(f"{r['n']:>10,}{r['explorer_draw_s']:>17.2f}{r['explorer_lasso_to_grid_s']:>14.2f}"
              f"{r['plotly_draw_s']:>15.2f}{r['plotly_lasso_to_selected_s']:>18.2f}")  # fmt: skip
    out = REPO / "bench" / "out" / "explorer.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"budget": DEFAULT_BUDGET, "results": results}, indent=2))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
