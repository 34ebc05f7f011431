"""The renderers bench/explorer.py compares with the explorer, as the bench runs them.

- **datashader**: the explorer with its density layer drawn by datashader (every point of
  the view aggregated per pixel, coloured by category, sent as one PNG under the
  budgeted WebGL points) instead of the log-count heatmap. Run as a script, it serves
  that explorer: ``python bench/_explorer_renderers.py --cache_dir ... --port ...``.
- **embedding-atlas**: Apple's package, its own page served by its own CLI over a Parquet
  file of the same points (``--x/--y`` given, no projection computed).

Neither is a vislens dependency: a row whose package is missing prints "not run" and how
to install it (bench/README.md).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

DS_WIDTH, DS_HEIGHT = 1000, 620
"""Pixels of the datashader image (about the plot area of the bench's 1400 × 1000 page)."""


def installed(dist: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def datashader_layer() -> Any:
    """A density layer for ExplorerViews drawn by datashader."""
    import datashader as ds
    import datashader.transfer_functions as tf
    import pandas as pd

    from vislens.app.explorer_figure import PALETTE, category_codes

    def layer(data: Any, mask: np.ndarray, xr: Any, yr: Any, color_by: str) -> Any:
        cv = ds.Canvas(plot_width=DS_WIDTH, plot_height=DS_HEIGHT, x_range=xr, y_range=yr)
        df = pd.DataFrame({"x": data.x[mask], "y": data.y[mask]})
        if color_by and data.is_categorical(color_by):
            order, codes = category_codes(data, color_by)
            df["c"] = pd.Categorical.from_codes(codes[mask], categories=order)
            agg = cv.points(df, "x", "y", agg=ds.count_cat("c"))
            key = {cat: PALETTE[k % len(PALETTE)] for k, cat in enumerate(order)}
            img = tf.shade(agg, color_key=key, how="eq_hist", min_alpha=60)
        else:
            img = tf.shade(cv.points(df, "x", "y", agg=ds.count()), cmap=["#c6cce0", "#28285a"])
        buf = io.BytesIO()
        img.to_pil().save(buf, format="PNG")
        image = {
            "source": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(),
            "xref": "x", "yref": "y", "x": xr[0], "y": yr[1], "sizex": xr[1] - xr[0],
            "sizey": yr[1] - yr[0], "sizing": "stretch", "layer": "below",
        }  # fmt: skip
        return [], [image]

    return layer


def serve_datashader_explorer() -> None:
    """`vislens view` with the datashader density layer (what the bench starts)."""
    ap = argparse.ArgumentParser()
    for flag in ("--cache_dir", "--coords_file", "--image_dir", "--port"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    from vislens.app.explorer import create_view_app
    from vislens.app.explorer_data import ExplorerData
    from vislens.app.explorer_views import ExplorerViews
    from vislens.app.shell import run_server

    data = ExplorerData.load(Path(args.cache_dir), args.coords_file, image_dir=Path(args.image_dir))
    app = create_view_app(data, views=ExplorerViews(data, density_layer=datashader_layer()))
    run_server(
        app, host="127.0.0.1", port=int(args.port), on_ready=lambda: print("ready", flush=True)
    )


@contextlib.contextmanager
def running(cmd: list[str], url: str, log: Path, timeout: float = 300) -> Iterator[str]:
    """A server process, answered 200 at ``url`` before this yields; stopped afterwards."""
    import httpx

    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url, timeout=2).status_code == 200:
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{cmd[0]} did not start: {log.read_text()[-1500:]}")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def atlas_command(parquet: Path, port: int) -> list[str] | str:
    """The embedding-atlas CLI serving ``parquet``'s x/y columns, or why it cannot run."""
    ver = installed("embedding-atlas")
    exe = shutil.which("embedding-atlas", path=str(Path(sys.executable).parent))
    if ver is None or exe is None:
        return "not run: embedding-atlas is not installed (bench/README.md says how)"
    return [exe, str(parquet), "--x", "x", "--y", "y", "--disable-projection",
            "--host", "127.0.0.1", "--port", str(port), "--no-auto-port"]  # fmt: skip


def _painted(page: Any, box: dict[str, float]) -> float:
    """Share of the canvas' pixels that are not the white background (a screenshot)."""
    from PIL import Image

    shot = page.screenshot(clip=box)
    px = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"), dtype=np.int16)
    return float((np.abs(px - 255).max(axis=2) > 40).mean())


ATLAS_COUNT = re.compile(r"([\d,]+)\s*/\s*([\d,]+)\s*points")


def atlas_times(page: Any, url: str, n: int) -> tuple[float, float, float, str]:
    """(navigation → points on the canvas, lasso → the selection's count shown, note).
    "Drawn" is polled by screenshots of the canvas (WebGL keeps no readable buffer), so
    the draw time is late by at most one screenshot."""
    t0 = time.perf_counter()
    page.goto(url)
    canvas = page.locator("canvas").first
    canvas.wait_for(state="visible", timeout=300_000)
    box = None
    while time.perf_counter() - t0 < 300:
        box = canvas.bounding_box()
        if box and box["width"] > 400 and _painted(page, box) > 0.005:
            break
        page.wait_for_timeout(20)
    draw = time.perf_counter() - t0
    text = page.evaluate("() => document.body.innerText")
    mode = "WebGL 2 fallback" if "Falling back to WebGL" in text else "WebGPU"
    if "requires a browser with WebGPU" in text or box is None:
        return float("nan"), float("nan"), float("nan"), "no WebGPU adapter, no WebGL fallback"
    page.locator("button[title^='Toggle lasso selection mode']").click()
    # A ring around the lower-right cluster (the map is fitted to the canvas, y up).
    ring = [(0.55, 0.6), (0.9, 0.6), (0.9, 0.95), (0.55, 0.95), (0.55, 0.61)]
    pts = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in ring]
    page.mouse.move(*pts[0])
    page.mouse.down()
    for p in pts[1:]:
        page.mouse.move(*p, steps=4)
    t1 = time.perf_counter()
    page.mouse.up()
    page.wait_for_function(
        "(n) => { const m = document.body.innerText.match(/([\\d,]+)\\s*\\/\\s*([\\d,]+)\\s*points/);"
        " return m && Number(m[1].replace(/,/g, '')) < n; }",
        arg=n,
        timeout=120_000,
    )
    select = time.perf_counter() - t1
    m = ATLAS_COUNT.search(page.evaluate("() => document.body.innerText"))
    chosen = m.group(1) if m else "?"
    return draw, select, float("nan"), f"{mode}; {chosen} selected (live while drawing)"


if __name__ == "__main__":
    serve_datashader_explorer()
