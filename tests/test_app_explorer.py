"""The explorer's data, geometry, figure and routes, without a browser."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers_app import LABELS, write_seed003_cache
from helpers_human import vislens_exe
from vislens.app.explorer import create_view_app, csv_safe, selection_indices
from vislens.app.explorer_data import ExplorerData
from vislens.app.explorer_figure import build_figure, hover_parts, typed_array
from vislens.app.explorer_views import ExplorerViews
from vislens.app.geometry import points_in_box, points_in_polygon
from vislens.errors import InputError


def _slow_in_polygon(x: float, y: float, px: list[float], py: list[float]) -> bool:
    """The crossing-number test, one point at a time, straight from its definition."""
    inside = False
    m = len(px)
    for i in range(m):
        j = (i - 1) % m
        if (py[i] > y) != (py[j] > y):
            x_cross = px[i] + (y - py[i]) * (px[j] - px[i]) / (py[j] - py[i])
            if x < x_cross:
                inside = not inside
    return inside


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_vertices=st.integers(3, 40),
    n_points=st.integers(1, 400),
)
def test_polygon_selection_equals_the_slow_reference(
    seed: int, n_vertices: int, n_points: int
) -> None:
    rng = np.random.default_rng(seed)
    # A star-shaped, generally concave polygon (lasso-like), and points around it.
    ang = np.sort(rng.uniform(0, 2 * np.pi, n_vertices))
    rad = rng.uniform(0.2, 1.0, n_vertices)
    px, py = rad * np.cos(ang), rad * np.sin(ang)
    x, y = rng.uniform(-1.2, 1.2, n_points), rng.uniform(-1.2, 1.2, n_points)
    fast = points_in_polygon(x, y, px, py)
    slow = [_slow_in_polygon(a, b, list(px), list(py)) for a, b in zip(x, y, strict=True)]
    assert fast.tolist() == slow


def test_box_and_degenerate_polygons() -> None:
    x = np.array([0.0, 1.0, 2.0, 3.0])
    y = np.array([0.0, 1.0, 2.0, 3.0])
    assert points_in_box(x, y, (2.5, 0.5), (0.5, 2.5)).tolist() == [False, True, True, False]
    assert not points_in_polygon(x, y, np.array([0.0, 1.0]), np.array([0.0, 1.0])).any()


@pytest.fixture()
def cache(tmp_path: Path) -> tuple[Path, Path]:
    return write_seed003_cache(tmp_path, 60, n_images=58)


def test_load_reads_the_seed_layout_and_rationales(cache: tuple[Path, Path]) -> None:
    cdir, idir = cache
    data = ExplorerData.load(cdir, "vis_umap_coords.npy", image_dir=idir)
    assert data.n == 60 and data.color_by == "ground_truth_word_label"
    assert data.hover == ["file_name", "ground_truth_word_label", "ground_truth_num_label"]
    assert data.notices == []
    r0, r1, r2 = data.rationale(0), data.rationale(1), data.rationale(2)
    assert (r0.prediction, r0.score, r0.rationale) == (
        "misclassification",
        "2",
        "looks like a dog <i>0</i>",
    )
    assert (r1.prediction, r1.score) == ("correct classification", "9")
    assert r2.prediction.startswith("unknown") and r2.score == ""
    assert data.image_url(3) == "/images/plot_00003.png"
    assert not data.image_missing(3) and data.image_missing(59)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("short_coords", "has 59 rows but"),
        ("three_d", "expected a numeric [n, 2] array"),
        ("nan", "row 5 is not finite"),
        ("no_metadata", "metadata.csv: not found"),
        ("bad_rationale_csv", "missing column(s) rationale"),
    ],
)
def test_bad_caches_are_one_clear_error(
    cache: tuple[Path, Path], breakage: str, message: str
) -> None:
    cdir, _ = cache
    coords = np.load(cdir / "vis_umap_coords.npy")
    if breakage == "short_coords":
        np.save(cdir / "vis_umap_coords.npy", coords[:59])
    elif breakage == "three_d":
        np.save(cdir / "vis_umap_coords.npy", coords[:, :1])
    elif breakage == "nan":
        coords[5, 1] = np.nan
        np.save(cdir / "vis_umap_coords.npy", coords)
    elif breakage == "no_metadata":
        (cdir / "metadata.csv").unlink()
    else:
        pd.DataFrame({"file_name": ["a"], "why": ["x"]}).to_csv(
            cdir / "mis_Qwen_Qwen3-VL-4B-Instruct.csv", index=False
        )
    with pytest.raises(
        InputError,
        match=message.replace("[", r"\[")
        .replace("]", r"\]")
        .replace("(", r"\(")
        .replace(")", r"\)"),
    ):
        ExplorerData.load(cdir, "vis_umap_coords.npy")


def test_missing_columns_and_files_become_notices(cache: tuple[Path, Path]) -> None:
    cdir, _ = cache
    (cdir / "correct_Qwen_Qwen3-VL-4B-Instruct.csv").unlink()
    data = ExplorerData.load(cdir, "vis_umap_coords.npy", color_by="nope", hover="file_name,ghost")
    text = " | ".join(data.notices)
    assert "'nope' is not in metadata.csv" in text and "ghost" in text
    assert "correct_Qwen_Qwen3-VL-4B-Instruct.csv not found" in text
    assert data.color_by == "" and data.hover == ["file_name"]


def test_view_draws_at_most_the_budget_and_zooming_keeps_the_same_points(
    cache: tuple[Path, Path],
) -> None:
    cdir, _ = cache
    data = ExplorerData.load(cdir, "vis_umap_coords.npy")
    mask = np.ones(data.n, dtype=bool)
    idx, total = data.view(mask, None, None, 20)
    assert total == 60 and len(idx) == 20
    # Zoom into a range: the points drawn there include every drawn point already inside it.
    xr, yr = (-5.0, 5.0), (-5.0, 20.0)
    zoomed, ztotal = data.view(mask, xr, yr, 20)
    inside = set(np.flatnonzero(points_in_box(data.x, data.y, xr, yr)).tolist())
    assert ztotal == len(inside) and set(zoomed.tolist()) <= inside
    assert {int(i) for i in idx if int(i) in inside} <= set(zoomed.tolist())


def test_filters_search_and_server_side_selection(cache: tuple[Path, Path]) -> None:
    cdir, _ = cache
    data = ExplorerData.load(cdir, "vis_umap_coords.npy")
    cats = data.filter_mask("ground_truth_word_label", ["cat", "dog"])
    assert cats.sum() == 30
    assert data.filter_mask(search="PLOT_0001").sum() == 10  # plot_00010..19, case-insensitive
    # A lasso around the "dog" cluster at (10, 0) selects exactly the dogs.
    lasso = {"lasso": {"x": [6, 14, 14, 6], "y": [-4, -4, 4, 4]}}
    sel = selection_indices(data, lasso, np.ones(data.n, dtype=bool))
    assert set(data.meta["ground_truth_word_label"].iloc[sel]) == {"dog"} and len(sel) == 15
    box = {"range": {"x": [6, 14], "y": [-4, 4]}}
    assert selection_indices(data, box, cats).tolist() == sel.tolist()
    assert selection_indices(data, lasso, ~cats).size == 0  # the filter applies


def _decode(spec: dict[str, str]) -> np.ndarray:
    """Plotly.js' reading of a typed array, written out: base64 bytes in the named dtype."""
    import base64

    names = {"f4": np.float32, "f8": np.float64, "u1": np.uint8, "i4": np.int32, "u4": np.uint32}
    out = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=names[spec["dtype"]])
    return out.reshape([int(s) for s in spec["shape"].split(",")]) if "shape" in spec else out


def test_typed_arrays_round_trip() -> None:
    for a in (
        np.array([1.5, -2.0, np.nan], np.float32),
        np.arange(12, dtype=np.uint8).reshape(3, 4),
    ):
        back = _decode(typed_array(a))
        assert back.dtype == a.dtype and back.shape == a.shape
        assert np.array_equal(back, a, equal_nan=True)
    assert typed_array(np.zeros((3, 4), np.uint8))["shape"] == "3, 4"


def test_data_reaches_plotly_escaped(cache: tuple[Path, Path]) -> None:
    cdir, _ = cache
    data = ExplorerData.load(cdir, "vis_umap_coords.npy")
    custom, template, meta = hover_parts(data, np.array([3, 0]))
    assert custom[0] == [3, "plot_00003.png", "&lt;b&gt;fish&lt;/b&gt;", "3"]
    assert custom[1][0] == 0 and meta == data.hover and "<b>" not in str(custom)
    assert template.startswith("%{meta[0]}: %{customdata[1]}<br>")
    fig = build_figure(data, np.arange(data.n), data.n, "ground_truth_word_label", None)
    assert {t["name"] for t in fig["data"]} == {"cat", "dog", "bird", "&lt;b&gt;fish&lt;/b&gt;"}
    # Every point is drawn once, at its own coordinates, with its row id first in customdata.
    rows = [c[0] for t in fig["data"] for c in t["customdata"]]
    assert sorted(rows) == list(range(data.n))
    for t in fig["data"]:
        ids = [c[0] for c in t["customdata"]]
        assert np.allclose(_decode(t["x"]), data.x[ids]) and np.allclose(
            _decode(t["y"]), data.y[ids]
        )
        assert set(data.meta["ground_truth_word_label"].iloc[ids]) == {
            t["name"].replace("&lt;", "<").replace("&gt;", ">")
        }
    num = build_figure(data, np.arange(data.n), data.n, "quality", None)
    assert len(num["data"]) == 1 and num["data"][0]["marker"]["showscale"]
    assert np.allclose(_decode(num["data"][0]["marker"]["color"]), data.meta["quality"])
    assert LABELS[3] == "<b>fish</b>"


def _pixels(
    data: ExplorerData, mask: np.ndarray, xr: tuple, yr: tuple
) -> dict[tuple[int, int], set[int]]:
    """The slow reference: for each image pixel (row from the top, column), the masked
    points that fall in it, by where each point lies on a WIDTH × HEIGHT grid over the view."""
    from vislens.app.explorer_density import HEIGHT, WIDTH

    out: dict[tuple[int, int], set[int]] = {}
    for i in np.flatnonzero(mask):
        fx = (data.x[i] - xr[0]) / (xr[1] - xr[0])
        fy = (data.y[i] - yr[0]) / (yr[1] - yr[0])
        if 0 <= fx <= 1 and 0 <= fy <= 1:
            col, row = min(int(fx * WIDTH), WIDTH - 1), min(int(fy * HEIGHT), HEIGHT - 1)
            out.setdefault((HEIGHT - 1 - row, col), set()).add(int(i))
    return out


def test_density_layer_draws_every_point_in_its_colour(cache: tuple[Path, Path]) -> None:
    import base64
    import io

    from PIL import Image

    from vislens.app.explorer_density import datashader_density, density_image
    from vislens.app.explorer_figure import PALETTE, category_codes

    cdir, _ = cache
    data = ExplorerData.load(cdir, "vis_umap_coords.npy")
    mask = data.filter_mask("ground_truth_word_label", ["cat", "dog", "bird"])
    xr, yr = (-4.0, 14.0), (-4.0, 14.0)
    ref = _pixels(data, mask, xr, yr)
    assert len(ref) >= 40  # nearly one pixel per point
    rgba = np.asarray(density_image(data, mask, xr, yr, "ground_truth_word_label").to_pil())
    # Exactly the pixels holding a point are painted, and a pixel of one category shows
    # that category's colour.
    assert set(zip(*np.nonzero(rgba[:, :, 3]), strict=True)) == set(ref)
    _, codes = category_codes(data, "ground_truth_word_label")
    single = {rc: {int(codes[i]) for i in p} for rc, p in ref.items()}
    single = {rc: cats.pop() for rc, cats in single.items() if len(cats) == 1}
    assert len(single) >= 40
    for (r, c), cat in single.items():
        want = PALETTE[cat].lstrip("#")
        assert rgba[r, c, :3].tolist() == [int(want[k : k + 2], 16) for k in (0, 2, 4)]
    # By a number: the pixel of the largest value is Viridis' last colour, the smallest its first.
    num = np.asarray(density_image(data, mask, xr, yr, "quality").to_pil())
    q = data.meta["quality"].to_numpy()
    alone = {next(iter(p)): rc for rc, p in ref.items() if len(p) == 1}
    top = int(np.flatnonzero(mask)[np.argmax(q[mask])])
    low = int(np.flatnonzero(mask)[np.argmin(q[mask])])
    assert num[alone[top]][:3].tolist() == [0xFD, 0xE7, 0x25]
    assert num[alone[low]][:3].tolist() == [0x44, 0x01, 0x54]
    # As the figure gets it: one PNG spanning the view's axes, no traces.
    traces, images = datashader_density(data, mask, xr, yr, "ground_truth_word_label")
    (img,) = images
    assert traces == [] and (img["x"], img["y"], img["sizex"], img["sizey"]) == (
        -4.0,
        14.0,
        18.0,
        18.0,
    )
    png = Image.open(io.BytesIO(base64.b64decode(img["source"].split(",", 1)[1])))
    assert np.array_equal(np.asarray(png.convert("RGBA")), rgba)


def test_views_cache_and_add_the_layer_past_the_budget(cache: tuple[Path, Path]) -> None:
    cdir, _ = cache
    data = ExplorerData.load(cdir, "vis_umap_coords.npy")
    views = ExplorerViews(data, budget=20)
    fig, count = views.figure("ground_truth_word_label")
    assert count == "60 of 60 points match"
    assert views.figure("ground_truth_word_label")[0] is fig  # cached
    assert len(fig["layout"]["images"]) == 1  # 60 points in view, 20 drawn: the layer
    assert sum(len(t["customdata"]) for t in fig["data"]) == 20
    fig2, count2 = views.figure("ground_truth_word_label", "ground_truth_word_label", ["cat"], "")
    assert count2 == "15 of 60 points match" and fig2["layout"]["images"] == []
    assert views.mask("ground_truth_word_label", ["cat"]).sum() == 15


def test_csv_export_defuses_formulas() -> None:
    df = pd.DataFrame({"a": ["=HYPERLINK(1)", "plain", "+1", "@x"], "n": [1, 2, 3, 4]})
    out = csv_safe(df)
    assert out["a"].tolist() == ["'=HYPERLINK(1)", "plain", "'+1", "'@x"]
    assert out["n"].tolist() == [1, 2, 3, 4]


def test_image_route_never_leaves_its_directory(cache: tuple[Path, Path], tmp_path: Path) -> None:
    cdir, idir = cache
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    os.symlink(secret, idir / "link-out.png")
    os.symlink(idir / "plot_00000.png", idir / "link-in.png")
    (idir / "sub").mkdir()
    (idir / "sub" / "x.png").write_bytes((idir / "plot_00000.png").read_bytes())
    client = create_view_app(
        ExplorerData.load(cdir, "vis_umap_coords.npy", image_dir=idir)
    ).server.test_client()
    ok = client.get("/images/plot_00000.png")
    assert ok.status_code == 200 and ok.data[:4] == b"\x89PNG"
    assert ok.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/images/link-in.png").status_code == 200
    assert client.get("/images/sub/x.png").status_code == 200
    attacks = [
        "/images/../secret.txt",
        "/images/%2e%2e/secret.txt",
        "/images/%2E%2E%2Fsecret.txt",
        "/images/%252e%252e/secret.txt",
        "/images/%252e%252e%252fsecret.txt",
        "/images/..%2f..%2fsecret.txt",
        f"/images/{secret}",
        f"/images//{secret}",
        "/images/%2f" + str(secret).lstrip("/"),
        "/images/link-out.png",
        "/images/plot_00000.png%00.txt",
        "/images/sub/..%5c..%5csecret.txt",
        "/images/plot_00059.png",  # listed in metadata, file missing
    ]
    for url in attacks:
        r = client.get(url)
        # 404, or (for names the router does not give to the image route) the page shell
        assert r.status_code in (400, 404) or r.mimetype == "text/html", url
        assert b"top secret" not in r.data, url


def test_view_cli_on_a_broken_cache_is_one_line_and_exit_2(cache: tuple[Path, Path]) -> None:
    cdir, _ = cache
    np.save(cdir / "vis_umap_coords.npy", np.zeros((3, 2)))
    r = subprocess.run(
        [vislens_exe(), "view", "--cache_dir", str(cdir), "--coords_file", "vis_umap_coords.npy"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == 2 and "has 3 rows but" in out and "http://" not in out
    assert "Traceback" not in out


def test_view_cli_has_the_seed_flags_and_defaults() -> None:
    import inspect

    from vislens.app.commands import view_cmd

    sig = inspect.signature(view_cmd).parameters
    defaults = {k: v.default for k, v in sig.items()}
    assert defaults["mis_csv"] == "mis_Qwen_Qwen3-VL-4B-Instruct.csv"
    assert defaults["correct_csv"] == "correct_Qwen_Qwen3-VL-4B-Instruct.csv"
    assert defaults["color_by"] == "ground_truth_word_label"
    assert defaults["hover"] == "file_name,ground_truth_word_label,ground_truth_num_label"
    assert defaults["host"] == "127.0.0.1" and defaults["port"] == 8050
    r = subprocess.run(
        [vislens_exe(), "view", "--help"], capture_output=True, text=True, timeout=120
    )
    for flag in ("--cache_dir", "--coords_file", "--image_dir", "--image_root", "--mis_csv",
                 "--correct_csv", "--color_by", "--hover", "--host", "--port"):  # fmt: skip
        assert flag in r.stdout, flag


def test_a_study_map_is_coloured_by_a_column_that_varies() -> None:
    from vislens.app.explorer_page import default_colour

    def data(**cols: list[object]) -> ExplorerData:
        meta = pd.DataFrame({"item_id": ["a", "b", "c", "d"], **cols})
        return ExplorerData(meta=meta, x=np.zeros(4), y=np.zeros(4), color_by="")

    nan = [np.nan] * 4
    assert default_colour(data(split=nan, q=[0.1, 0.2, 0.3, 0.4], shape=list("xyxy"))) == "shape"
    assert default_colour(data(split=nan, q=[0.1, 0.2, 0.3, 0.4])) == "q"
    assert default_colour(data(split=nan, kind=list("zzzz"), n=[1, 1, 1, 1])) == ""
