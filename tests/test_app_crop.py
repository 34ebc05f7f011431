"""The patch box and zoomed crop of annotation pages: the window around the patch on any
grid (non-square, small, at borders), and what CSS shows in the crop box, checked pixel
by pixel against slicing the image's patches directly."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from vislens.app.crop import (
    CROP_PX,
    Window,
    auto_context,
    box_style,
    context_for,
    crop_size,
    crop_style,
    crop_window,
    patch_grid,
)

GRIDS = [(1, 1), (2, 5), (3, 7), (10, 10), (16, 40), (24, 24)]


@pytest.mark.parametrize(("rows", "cols"), GRIDS)
@pytest.mark.parametrize("context", [0, 1, 2, 3])
def test_window_holds_the_patch_inside_the_grid(rows: int, cols: int, context: int) -> None:
    for row in range(rows):
        for col in range(cols):
            w = crop_window(row, col, rows, cols, context)
            assert (w.rows, w.cols) == (min(2 * context + 1, rows), min(2 * context + 1, cols))
            assert 0 <= w.top <= row < w.top + w.rows <= rows
            assert 0 <= w.left <= col < w.left + w.cols <= cols
            # Centred on the patch wherever the grid leaves room on both sides.
            if context <= row < rows - context:
                assert w.top == row - context
            if context <= col < cols - context:
                assert w.left == col - context


def test_a_patch_outside_the_grid_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"outside the 4 × 6 grid"):
        crop_window(4, 0, 4, 6, 1)


def _css_background(
    box: tuple[int, int], size: tuple[str, str], position: tuple[str, str], image: tuple[int, int]
) -> list[list[tuple[float, float]]]:
    """For each box pixel's centre, the image pixel CSS puts there: background-size s% of
    the box, background-position p% aligning p% of the image with p% of the box."""
    (bw, bh), (iw, ih) = box, image
    sw, sh = bw * float(size[0].rstrip("%")) / 100, bh * float(size[1].rstrip("%")) / 100
    ox = (bw - sw) * float(position[0].rstrip("%")) / 100
    oy = (bh - sh) * float(position[1].rstrip("%")) / 100
    return [
        [((i + 0.5 - ox) * iw / sw, (j + 0.5 - oy) * ih / sh) for i in range(bw)] for j in range(bh)
    ]


@pytest.mark.parametrize(
    ("rows", "cols", "image", "row", "col", "context"),
    [
        (4, 6, (360, 200), 3, 5, 1),  # non-square grid, non-square patches, corner
        (4, 6, (360, 200), 1, 2, 1),  # inside
        (10, 10, (280, 280), 0, 9, 2),  # top-right border, 5 × 5
        (3, 7, (70, 30), 1, 3, 4),  # a grid smaller than the window: all of it
        (24, 24, (336, 336), 12, 0, 0),  # the patch alone
    ],
)
def test_the_crop_shows_exactly_the_window(
    rows: int, cols: int, image: tuple[int, int], row: int, col: int, context: int
) -> None:
    win = crop_window(row, col, rows, cols, context)
    box = crop_size(win, rows, cols, image)
    style = crop_style("x.png", win, rows, cols, box)
    assert (style["width"], style["height"]) == (f"{box[0]}px", f"{box[1]}px")
    shown = _css_background(
        box,
        tuple(style["backgroundSize"].split()),  # type: ignore[arg-type]
        tuple(style["backgroundPosition"].split()),  # type: ignore[arg-type]
        image,
    )
    pw, ph = image[0] / cols, image[1] / rows  # a patch in image pixels
    for j, line in enumerate(shown):
        for i, (x, y) in enumerate(line):
            # The reference: the window's patches laid out over the box, one cell each.
            want = (
                win.top + int((j + 0.5) * win.rows / box[1]),
                win.left + int((i + 0.5) * win.cols / box[0]),
            )
            assert (int(y // ph), int(x // pw)) == want, (i, j)
    # The crop keeps the window's shape on the image, its longer side CROP_PX.
    assert max(box) == CROP_PX
    assert abs(box[0] / box[1] - (win.cols * pw) / (win.rows * ph)) < 0.02


def test_boxes_are_the_patch_in_percent_of_any_grid() -> None:
    s = box_style(3, 5, 4, 6)
    assert (s["left"], s["top"], s["width"], s["height"]) == (
        f"{100 * 5 / 6}%",
        "75.0%",
        f"{100 / 6}%",
        "25.0%",
    )
    # The outline inside the crop is the patch's place in the window.
    win = crop_window(3, 5, 4, 6, 1)
    assert win == Window(top=1, left=3, rows=3, cols=3)
    assert box_style(3 - win.top, 5 - win.left, win.rows, win.cols)["left"] == f"{100 * 2 / 3}%"


def test_grid_and_context_from_the_item() -> None:
    assert patch_grid({"grid": 10}) == (10, 10)
    assert patch_grid({}) == (24, 24)
    assert patch_grid({"grid": 6, "source": {"grid_h": 4, "grid_w": 6}}) == (4, 6)
    assert patch_grid({"grid": 6, "grid_h": 4, "grid_w": 6}) == (4, 6)
    assert patch_grid({"grid": 6, "source": {"grid_h": True, "grid_w": 6}}) == (6, 6)
    assert [auto_context(g, g) for g in (1, 10, 16, 24, 32, 64)] == [1, 1, 1, 2, 2, 4]
    assert context_for(None, 4, 40) == 2 and context_for(0, 4, 40) == 0
    with pytest.raises(ValueError, match="crop context"):
        context_for(-1, 4, 4)
    # Without the image's size, patches are taken as square.
    assert crop_size(Window(0, 0, 3, 5), 10, 10, None) == (CROP_PX, round(CROP_PX * 3 / 5))


def test_the_page_draws_the_crop_it_is_given(tmp_path: Path) -> None:
    from helpers_human import make_study, vislens_exe
    from vislens.app.annotate_items import PatchView, _render
    from vislens.app.shell import create_app
    from vislens.human.session import TaskSession
    from vislens.human.tasks import create_patch_task
    from vislens.store.annotations import AnnotationStore

    study = make_study(tmp_path / "st")
    rec = {"id": "a", "image_url": "http://example.invalid/a.png", "patch_row": 0,
           "patch_col": 9, "grid": 10, "candidates": ["w"]}  # fmt: skip
    (tmp_path / "d.json").write_text(json.dumps([rec]))
    store = AnnotationStore.for_study(study)
    create_patch_task(store, tmp_path / "d.json", name="p")
    session = TaskSession(store, "p")
    state = session.state(store.add_annotator("x"))
    for context, text in ((0, "1 × 1"), (2, "5 × 5"), (None, "3 × 3")):
        page = str(_render(session, state, [], patch=PatchView(context=context)))
        assert f"Zoomed: {text} patches" in page
    store.close()
    assert create_app(study, crop_context=2).vislens_context.crop_context == 2
    out = subprocess.run([vislens_exe(), "serve", "--help"], capture_output=True, text=True)
    assert "--crop-context" in out.stdout


def wide_colour(r: int, c: int) -> tuple[int, int, int]:
    return (40 * c + 20, 60 * r + 20, 120)


def _wide_study(tmp_path: Path) -> Path:
    """A study with one patch task: a model with a 4 x 6 grid of 60 x 50 px patches (each
    its own colour), the patch in the bottom-right corner."""
    from PIL import Image

    from helpers_human import make_study
    from vislens.human.tasks import create_patch_task
    from vislens.store.annotations import AnnotationStore

    study = make_study(tmp_path / "study")
    wide = Image.new("RGB", (360, 200))
    for r in range(4):
        for c in range(6):
            wide.paste(wide_colour(r, c), (60 * c, 50 * r, 60 * c + 60, 50 * r + 50))
    wide.save(tmp_path / "wide.png")
    corner = {"id": "w0", "image_path": str(tmp_path / "wide.png"), "patch_row": 3,
              "patch_col": 5, "grid": 6, "grid_h": 4, "grid_w": 6, "candidates": ["corner"]}  # fmt: skip
    (tmp_path / "wide.json").write_text(json.dumps([corner]))
    store = AnnotationStore.for_study(study)
    create_patch_task(store, tmp_path / "wide.json", name="wide")
    store.close()
    return study.root


def crop_boxes(page: Any, url: str, first: str) -> tuple[dict[str, float], ...]:
    """Open a patch task's page; the bounding boxes of the full image, its patch box, the
    crop and the crop's outline."""
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.locator("#ann-item-no")).to_have_text(first)
    page.wait_for_function("document.querySelector('.ann-full-img').naturalWidth > 0")
    boxes = [
        page.locator(s).bounding_box()
        for s in (".ann-full-img", "#ann-box", "#ann-crop", "#ann-crop-box")
    ]
    assert all(boxes)
    return tuple(boxes)  # type: ignore[arg-type]


@pytest.mark.browser
@pytest.mark.slow
def test_crop_on_a_non_square_grid_at_the_corner(tmp_path: Path) -> None:
    """4 x 6 patches of 60 x 50 px, the patch in the corner: the crop is the 3 x 3 patches
    up and left of it (shifted inward), shaped like them, the patch outlined in its corner;
    the pixels on screen are those patches' colours."""
    import io

    from PIL import Image
    from playwright.sync_api import expect, sync_playwright

    from helpers_human import chromium_browser, running_server

    study_dir = _wide_study(tmp_path)
    with running_server(study_dir) as server, sync_playwright() as pw:
        browser = chromium_browser(pw)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        url = f"{server.url}/annotate/wide?annotator=zed"
        full, box, crop, inner = crop_boxes(page, url, "Item 1 / 1")
        assert abs(box["x"] - (full["x"] + full["width"] * 5 / 6)) <= 2
        assert abs(box["y"] - (full["y"] + full["height"] * 3 / 4)) <= 2
        assert abs(crop["width"] / crop["height"] - 180 / 150) < 0.03  # 3 patches of 60 x 50
        assert abs(inner["x"] - (crop["x"] + crop["width"] * 2 / 3)) <= 2
        assert abs(inner["y"] - (crop["y"] + crop["height"] * 2 / 3)) <= 2
        expect(page.locator(".ann-fig figcaption").first).to_have_text(
            "Patch row 3, column 5 of 4 × 6"
        )
        shot = Image.open(io.BytesIO(page.locator("#ann-crop").screenshot())).convert("RGB")
        w, h = shot.size
        for i in range(3):
            for j in range(3):
                got = shot.getpixel((int((j + 0.5) * w / 3), int((i + 0.5) * h / 3)))
                want = wide_colour(1 + i, 3 + j)
                assert max(abs(a - b) for a, b in zip(got, want, strict=True)) <= 8, (i, j, got)
        browser.close()
