"""Explorer renderers in headless Chromium: navigation → drawn scatter, and lasso → image
grid (or the renderer's own selection result), at 10k, 100k and 1M points.

    python bench/explorer.py [--quick] [--repeat 3] [--only explorer,plotly] [--sizes 1000000]
    # --quick: 10k and 100k points only

Rows, each over the same points (seed 003's cache layout, four clusters):

- **explorer**: `vislens view` as shipped: at most 20,000 WebGL points of the view, and
  when the view holds more, every point drawn by datashader into one PNG under them; the
  first figure comes with the page; the lasso's shape goes to the server, which selects
  among all points.
- **plotly** (the reference): a plain Plotly scattergl page holding every point in the
  browser (what FiftyOne's embeddings panel does); the lasso is Plotly's own.
- **heatmap**: the explorer with the density layer it had before (log counts on a
  200 × 200 grid as a translucent Plotly heatmap) instead of datashader's image.
- **embedding-atlas**: Apple's package, its own page from its own CLI (WebGPU, or its WebGL
  2 fallback where the browser has no WebGPU adapter, as headless Chromium here with
  `--disable-gpu`); lasso → its count of selected points.

Zoom: the view set to the dog cluster → redrawn (for the explorer, with the server's figure
for the new view; for plain Plotly, in the browser; not timed for embedding-atlas).

Each row is timed after one unmeasured load (a warm browser cache, as a second visit), and
the median of ``--repeat`` loads is reported. Goals at 1M for the explorer: first draw
under 3 s and lasso → grid under 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from _explorer_renderers import atlas_command, atlas_times, running  # noqa: E402
from _report import figure  # noqa: E402
from helpers_app import write_seed003_cache  # noqa: E402
from helpers_human import chromium_browser, free_port  # noqa: E402
from test_app_explorer_browser import seed_viewer  # noqa: E402

RENDERERS = ("explorer", "plotly", "heatmap", "embedding-atlas")
GD = "document.querySelector('{sel}')"
EX = "#ex-graph .js-plotly-plot"
RING = [(7.0, -1.5), (13.0, -1.5), (13.0, 1.5), (7.0, 1.5), (7.0, -1.4)]
DRAWN = (
    "(sel) => { const gd = document.querySelector(sel);"
    " return gd && gd._fullData && gd._fullData.some(t => t.type === 'scattergl'); }"
)
ZOOM = {"xaxis.range": [8.0, 12.0], "yaxis.range": [-2.0, 2.0]}
Timer = Callable[[Any], tuple[float, float, float, str]]


def _px(page: Any, sel: str, x: float, y: float) -> tuple[float, float]:
    js = (
        "([x, y]) => { const gd = " + GD.format(sel=sel) + "; const fl = gd._fullLayout,"
        " b = gd.getBoundingClientRect();"
        " return [b.left + fl.margin.l + fl.xaxis.l2p(x), b.top + fl.margin.t + fl.yaxis.l2p(y)]; }"
    )
    px, py = page.evaluate(js, [x, y])
    return float(px), float(py)


def _lasso(page: Any, sel: str) -> None:
    """Draw RING with the lasso (the mouse still down at the end)."""
    page.evaluate("() => window.Plotly.relayout(" + GD.format(sel=sel) + ", {dragmode: 'lasso'})")
    page.wait_for_timeout(300)
    page.mouse.move(*_px(page, sel, *RING[0]))
    page.mouse.down()
    for pt in RING[1:]:
        page.mouse.move(*_px(page, sel, *pt), steps=4)


def ring_count(coords: np.ndarray) -> int:
    """How many points lie inside RING in data coordinates. The renderers' own counts
    differ from this (and from each other) by the points within a pixel of the ring's
    edge: the lasso is drawn with the mouse, in whole pixels of axes whose scales differ
    from page to page."""
    from matplotlib.path import Path as Polygon

    return int(Polygon(RING, closed=True).contains_points(coords[:, :2]).sum())


def _two_frames(page: Any) -> None:
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def explorer_times(url: str) -> Timer:
    """The explorer's page (`vislens view`, or the heatmap variant)."""

    def run(page: Any) -> tuple[float, float, str]:
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_function(DRAWN, arg=EX, timeout=300_000)
        _two_frames(page)
        draw = time.perf_counter() - t0
        _lasso(page, EX)
        t1 = time.perf_counter()
        page.mouse.up()
        page.wait_for_function(
            "() => document.querySelectorAll('#ex-grid figure').length > 0", timeout=300_000
        )
        select = time.perf_counter() - t1
        note = page.locator("#ex-sel-info").inner_text().split(" · ")[0]
        return draw, select, _zoom(page, EX, server=True), note

    return run


def _zoom(page: Any, sel: str, *, server: bool) -> float:
    """Zoom into the dog cluster: time until the view is redrawn (for the explorer, until
    the server's figure for the new view is on the page)."""
    page.evaluate(
        "(sel) => { const gd = document.querySelector(sel); window.__title ="
        " gd.layout.title && gd.layout.title.text; window.__zoomed = false;"
        " gd.on('plotly_afterplot', () => { window.__zoomed = true; }); }",
        sel,
    )
    page.evaluate("() => window.Plotly.relayout(" + GD.format(sel=sel) + ", {dragmode: 'zoom'})")
    t0 = time.perf_counter()
    page.evaluate(f"(z) => window.Plotly.relayout({GD.format(sel=sel)}, z)", ZOOM)
    if server:
        page.wait_for_function(
            "(sel) => { const gd = document.querySelector(sel);"
            " return gd.layout.title.text !== window.__title; }",
            arg=sel,
            timeout=300_000,
        )
    page.wait_for_function("() => window.__zoomed", timeout=300_000)
    _two_frames(page)
    return time.perf_counter() - t0


def plotly_times(url: str) -> Timer:
    """The reference page: every point in one Plotly scattergl trace."""

    def run(page: Any) -> tuple[float, float, str]:
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_function(DRAWN, arg="#ref", timeout=300_000)
        _two_frames(page)
        draw = time.perf_counter() - t0
        page.evaluate(
            "() => { window.__sel = null; document.getElementById('ref')"
            ".on('plotly_selected', e => { window.__sel = e ? e.points.length : 0; }); }"
        )
        _lasso(page, "#ref")
        t1 = time.perf_counter()
        page.mouse.up()
        page.wait_for_function("() => window.__sel !== null", timeout=300_000)
        select = time.perf_counter() - t1
        note = f"{page.evaluate('() => window.__sel'):,} selected (drawn points)"
        return draw, select, _zoom(page, "#ref", server=False), note

    return run


@contextlib.contextmanager
def plotly_page(root: Path, coords: np.ndarray, labels: list[str]) -> Any:
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

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a, **k: Quiet(*a, directory=str(root), **k)
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ref.html"
    finally:
        server.shutdown()


def measure(browser: Any, timer: Timer, repeat: int) -> dict[str, Any]:
    """One unmeasured load, then the median of ``repeat`` loads."""
    runs = []
    for k in range(repeat + 1):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            out = timer(page)
        finally:
            page.close()
        if k:
            runs.append(out)
    draws, sels, zooms = ([r[k] for r in runs] for k in range(3))
    return {"draw_s": statistics.median(draws), "lasso_s": statistics.median(sels),
            "zoom_s": statistics.median(zooms), "draws": draws, "lassos": sels,
            "zooms": zooms, "note": runs[-1][3]}  # fmt: skip


def one_size(browser: Any, n: int, only: set[str], repeat: int) -> list[dict[str, Any]]:
    import pandas as pd

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vislens-bench-") as tmp:
        root = Path(tmp)
        cache, images = write_seed003_cache(root, n, n_images=48)
        coords = np.load(cache / "vis_umap_coords.npy")
        meta = pd.read_csv(cache / "metadata.csv")
        rows.append({"renderer": "ring (exact)", "n": n,
                     "note": f"{ring_count(coords):,} points inside the lasso's ring"})  # fmt: skip

        def row(name: str, run: Callable[[], dict[str, Any]] | str) -> None:
            if name not in only:
                return
            res = {"renderer": name, "n": n}
            res.update({"note": run} if isinstance(run, str) else run())
            rows.append(res)
            print(json.dumps(res), flush=True)

        with seed_viewer(cache, images) as url:
            row("explorer", lambda: measure(browser, explorer_times(url), repeat))
        row("plotly", lambda: _plotly(browser, root, coords, meta, repeat))
        if "heatmap" in only:
            port = free_port()
            cmd = [sys.executable, str(REPO / "bench" / "_explorer_renderers.py"),
                   "--cache_dir", str(cache), "--coords_file", "vis_umap_coords.npy",
                   "--image_dir", str(images), "--port", str(port)]  # fmt: skip
            with running(cmd, f"http://127.0.0.1:{port}/", root / "heat.log") as url:
                row("heatmap", lambda: measure(browser, explorer_times(url), repeat))
        parquet = root / "atlas.parquet"
        meta.assign(x=coords[:, 0], y=coords[:, 1]).to_parquet(parquet)
        port = free_port()
        cmd_or_why = atlas_command(parquet, port)
        if isinstance(cmd_or_why, str):
            row("embedding-atlas", cmd_or_why)
        else:
            with running(cmd_or_why, f"http://127.0.0.1:{port}/", root / "atlas.log") as url:
                row(
                    "embedding-atlas",
                    lambda: measure(browser, lambda p: atlas_times(p, url, n), repeat),
                )
    return rows


def _plotly(browser: Any, root: Path, coords: np.ndarray, meta: Any, repeat: int) -> dict[str, Any]:
    with plotly_page(root, coords, meta["file_name"].tolist()) as url:
        return measure(browser, plotly_times(url), repeat)


def report(rows: list[dict[str, Any]], quick: bool) -> None:
    from vislens.app.explorer import DEFAULT_BUDGET

    print(
        f"\nexplorer budget: {DEFAULT_BUDGET:,} points drawn at most; load {os.getloadavg()[0]:.2f}"
    )
    ref = {r["n"]: r for r in rows if r["renderer"] == "plotly" and "draw_s" in r}
    print(
        f"{'renderer':<16}{'points':>10}{'draw s':>9}{'÷ plotly':>10}{'lasso s':>9}{'÷ plotly':>10}  note"
    )
    for r in rows:
        if "draw_s" not in r:
            print(f"{r['renderer']:<16}{r['n']:>10,}  {r['note']}")
            continue
        p = ref.get(r["n"])
        rd = f"{r['draw_s'] / p['draw_s']:.2f}" if p else "—"
        rl = f"{r['lasso_s'] / p['lasso_s']:.2f}" if p else "—"
        zs = f"{r['zoom_s']:.2f}" if r["zoom_s"] == r["zoom_s"] else "—"
        print(f"{r['renderer']:<16}{r['n']:>10,}{r['draw_s']:>9.2f}{rd:>10}{r['lasso_s']:>9.2f}{rl:>10}{zs:>8}  {r['note']}")  # fmt: skip
    for r in rows:
        if r["renderer"] == "explorer" and "draw_s" in r:
            p = ref.get(r["n"])
            big = r["n"] >= 1_000_000 and not quick
            pv = {"reference": "plain Plotly scattergl page, every point"}
            figure(f"first draw, {r['n']:,} points", r["draw_s"], "s", **pv,
                   reference_value=p["draw_s"] if p else None, goal="< 3 s at 1M",
                   met=(r["draw_s"] < 3) if big else None)  # fmt: skip
            figure(f"lasso → image grid, {r['n']:,} points", r["lasso_s"], "s", **pv,
                   reference_value=p["lasso_s"] if p else None, goal="< 1 s at 1M",
                   met=(r["lasso_s"] < 1) if big else None)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="10k and 100k points only")
    ap.add_argument("--repeat", type=int, default=3, help="measured loads per row (median)")
    ap.add_argument("--only", default=",".join(RENDERERS), help="renderers to run")
    ap.add_argument("--sizes", default="", help="point counts, e.g. 1000000 (default: all)")
    args = ap.parse_args()
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    if args.sizes:
        sizes = [int(v) for v in args.sizes.split(",")]
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    from playwright.sync_api import sync_playwright

    print(f"load before: {os.getloadavg()}", flush=True)
    rows: list[dict[str, Any]] = []
    with sync_playwright() as pw:
        browser = chromium_browser(pw)
        for n in sizes:
            rows += one_size(browser, n, only, args.repeat)
        browser.close()
    report(rows, args.quick)
    out = REPO / "bench" / "out" / "explorer.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows}, indent=2))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
