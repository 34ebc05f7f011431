"""The renderers bench/explorer.py compares with the explorer, as the bench runs them.

- **heatmap**: the explorer with the density layer it had before datashader: log counts
  on a 200 × 200 grid drawn as a translucent Plotly heatmap under the budgeted WebGL
  points. Run as a script, it serves that explorer:
  ``python bench/_explorer_renderers.py --cache_dir ... --port ...``.
- **embedding-atlas**: Apple's package, its own page served by its own CLI over a Parquet
  file of the same points (``--x/--y`` given, no projection computed). Not a vislens
  dependency: its row prints "not run" when it is missing (bench/README.md says how to
  install it).
"""

from __future__ import annotations

import argparse
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


def installed(dist: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


HEATMAP_BINS = 200


def heatmap_layer(data: Any, mask: np.ndarray, xr: Any, yr: Any, color_by: str) -> Any:
    """The explorer's density layer before datashader: log counts on a 200 × 200 grid as a
    translucent heatmap, one byte a cell."""
    from vislens.app.explorer_figure import typed_array

    h, xe, ye = np.histogram2d(
        data.x[mask], data.y[mask], bins=HEATMAP_BINS, range=[sorted(xr), sorted(yr)]
    )
    z = h.T  # [y, x], as Plotly's heatmap wants it
    top = float(np.log1p(z.max())) or 1.0
    trace = {
        "type": "heatmap",
        "z": typed_array(np.rint(255.0 * np.log1p(z) / top).astype(np.uint8)),
        "x": typed_array(((xe[:-1] + xe[1:]) / 2).astype(np.float32)),
        "y": typed_array(((ye[:-1] + ye[1:]) / 2).astype(np.float32)),
        "zmin": 0, "zmax": 255, "showscale": False, "hoverinfo": "skip", "name": "density",
        "colorscale": [[0, "rgba(255,255,255,0)"], [1, "rgba(40,40,90,0.85)"]],
    }  # fmt: skip
    return [trace], []


def serve_heatmap_explorer() -> None:
    """`vislens view` with the heatmap density layer (what the bench starts)."""
    ap = argparse.ArgumentParser()
    for flag in ("--cache_dir", "--coords_file", "--image_dir", "--port"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    from vislens.app.explorer import create_view_app
    from vislens.app.explorer_data import ExplorerData
    from vislens.app.explorer_views import ExplorerViews
    from vislens.app.shell import run_server

    data = ExplorerData.load(Path(args.cache_dir), args.coords_file, image_dir=Path(args.image_dir))
    app = create_view_app(data, views=ExplorerViews(data, density_layer=heatmap_layer))
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
    if "requires a browser with WebGPU" in page.evaluate("() => document.body.innerText"):
        nan = float("nan")
        return nan, nan, nan, "no WebGPU adapter, and this version has no WebGL fallback"
    assert box is not None
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
    # The count follows the ring while it is drawn and settles after the release: the
    # time is when the settled count first showed.
    seen: list[tuple[float, int]] = []
    while time.perf_counter() - t1 < 120:
        m = ATLAS_COUNT.search(page.evaluate("() => document.body.innerText"))
        seen.append((time.perf_counter() - t1, int(m.group(1).replace(",", "")) if m else -1))
        last = seen[-1][1]
        steady = [c for t, c in seen if t > seen[-1][0] - 0.3]
        if 0 < last < n and seen[-1][0] > 0.3 and all(c == last for c in steady):
            break
        page.wait_for_timeout(30)
    final = seen[-1][1]
    first = (
        next(t for t, c in reversed(seen) if c != final)
        if any(c != final for _, c in seen)
        else 0.0
    )
    select = min(first + 0.03, seen[-1][0]) if first else 0.0
    text = page.evaluate("() => document.body.innerText")
    mode = "WebGL 2 fallback" if "Falling back to WebGL" in text else "WebGPU"
    return draw, select, float("nan"), f"{mode}; {final:,} selected (live while drawing)"


if __name__ == "__main__":
    serve_heatmap_explorer()
