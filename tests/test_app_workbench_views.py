"""Server-side checks of the workbench views: the probe heatmap outlines the target's
cells, the Patches page names the toy world's ground truth for a cell, and a feature's
page draws its activation histogram, its MS beside the calibration band and the patch
heatmap over its top images."""

from __future__ import annotations

import base64
import io
import json
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from helpers_app import write_workbench_study


@pytest.fixture(scope="module")
def study_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_workbench_study(tmp_path_factory.mktemp("wb"))


def _ctx(root: Path) -> types.SimpleNamespace:
    from vislens.study import Study

    return types.SimpleNamespace(study=Study.open(root))


def _walk(node: object) -> list[object]:
    """Every Dash component under ``node``, ``node`` included."""
    out = [node]
    kids = getattr(node, "children", None)
    for k in kids if isinstance(kids, list | tuple) else [kids]:
        if k is not None and not isinstance(k, str | int | float):
            out += _walk(k)
    return out


def _by_id(node: object, id: str) -> object:
    hits = [n for n in _walk(node) if getattr(n, "id", None) == id]
    assert hits, f"no component with id {id!r}"
    return hits[0]


# -- probe: the target outlined ------------------------------------------------------------
def test_target_cells_from_flat_evidence_pairs_and_meta() -> None:
    from vislens.app.probe_page import target_cells

    meta = {"grid": [10, 10], "evidence": [97]}
    assert target_cells("[97, 3]", meta) == [(9, 7), (0, 3)]  # as the probe writes it
    assert target_cells("[[2, 5]]", {}) == [(2, 5)]
    assert target_cells("[]", meta) == [(9, 7)]  # per_case empty → the case file's meta
    assert target_cells("not json", {"grid": [4, 6], "evidence": [7]}) == [(1, 1)]
    assert target_cells("[13]", {}, n_cols=5) == [(2, 3)]  # no grid in meta: heatmap width
    assert target_cells("[]", {}) == []
    assert target_cells('["x", true, -1, [1]]', {"grid": [3, 3]}) == []


def test_probe_figure_outlines_each_target_cell() -> None:
    from vislens.app.probe_page import probe_figure

    att = np.random.default_rng(0).random((2, 3, 4, 5)).astype(np.float16)
    z = {"attention": att, "relative": att.mean(1)}
    fig = probe_figure(z, 1, 2, False, [(0, 0), (3, 4), (9, 9)])  # (9, 9) is off the grid
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert [(s.x0, s.x1, s.y0, s.y1) for s in rects] == [
        (-0.5, 0.5, -0.5, 0.5),
        (3.5, 4.5, 2.5, 3.5),
    ]
    np.testing.assert_array_equal(fig.data[0].z, att[1, 2].astype(np.float32))
    assert "target outlined" in fig.layout.title.text
    rel = probe_figure(z, 0, 0, True, [])
    np.testing.assert_array_equal(rel.data[0].z, att.mean(1)[0].astype(np.float32))
    assert not rel.layout.shapes


def test_probe_heat_callback_reads_evidence_from_per_case(tmp_path: Path) -> None:
    """The page's callback takes the cells from per_case.csv's evidence column."""
    import dash

    from vislens.app.probe_page import _register_probe

    root = write_workbench_study(tmp_path)
    pc = root / "probe" / "reports" / "per_case.csv"
    cases = pd.read_csv(pc, dtype=str, keep_default_na=False)
    cases.loc[cases["case_id"] == "case0", "evidence"] = json.dumps([23, 24])
    cases.to_csv(pc, index=False)
    app = dash.Dash(__name__)
    _register_probe(app, _ctx(root))
    heat = next(
        v["callback"] for k, v in app.callback_map.items() if k.startswith("..pr-heat.figure")
    )
    out = heat.__wrapped__("case0", 1, 2, [])
    fig = out[0]
    rects = [(s["x0"], s["y0"]) for s in fig.layout.shapes]
    assert rects == [(2.5, 1.5), (3.5, 1.5)]  # cells (2, 3) and (2, 4) of the 10-wide grid


# -- patches: ground truth -----------------------------------------------------------------
def test_cell_truth() -> None:
    from vislens.app.patches import cell_truth

    objs = json.dumps([
        {"shape": "circle", "color": "red", "r": 2, "c": 7, "bbox": [0, 0, 1, 1]},
        {"shape": "square", "color": "blue", "r": 0, "c": 0},
    ])  # fmt: skip
    assert cell_truth(objs, 2, 7) == "ground truth: red circle"
    assert cell_truth(objs, 0, 0) == "ground truth: blue square"
    assert cell_truth(objs, 7, 2) == "empty cell"
    assert cell_truth("[]", 1, 1) == "empty cell"
    assert cell_truth(None, 1, 1) is None
    assert cell_truth(float("nan"), 1, 1) is None
    assert cell_truth("{broken", 1, 1) is None


def test_patches_callback_shows_ground_truth_from_image_table(tmp_path: Path) -> None:
    from vislens.app.patches import cell_view, item_objects, read_neighbors

    root = write_workbench_study(tmp_path)
    ctx = _ctx(root)
    t = pd.read_parquet(root / "images.parquet")
    t.drop(columns=["objects"]).to_parquet(root / "images.parquet", index=False)
    assert item_objects(ctx, "img0") is None  # no objects column: no line on the page
    nb = read_neighbors(ctx)
    assert nb is not None
    assert not [
        n for n in _walk(cell_view(ctx, nb, "img0", 1, 2, 7)) if getattr(n, "id", "") == "pt-truth"
    ]
    t["objects"] = [json.dumps([{"shape": "circle", "color": "red", "r": 2, "c": 7}])] + ["[]"] * 3
    t.to_parquet(root / "images.parquet", index=False)

    def truth(row: int, col: int) -> str:
        blocks = cell_view(ctx, nb, "img0", 1, row, col)
        assert _by_id(blocks[1], "pt-cell") is not None  # the neighbours still follow
        return str(_by_id(blocks[0], "pt-truth").children)

    assert truth(2, 7) == "ground truth: red circle"
    assert truth(3, 3) == "empty cell"


# -- features: histogram, calibration band, overlays ---------------------------------------
def _add_codes(root: Path) -> np.ndarray:
    """A code store for run1 (4 items × 10×10 patch tokens, d_sae 6) in the store's own
    writer; returns the dense codes [items, tokens, features]."""
    from vislens.store.codes import CodesInfo, CodesWriter, dense_to_csr

    rng = np.random.default_rng(1)
    dense = rng.random((4, 100, 6)).astype(np.float32)
    dense[dense < 0.7] = 0.0
    dense[1, :, 3] = 0.0  # one item where feature 3 never fires
    info = CodesInfo(d_sae=6, n_tokens=100, tokens="patches", has_cls=False, n_prefix_tokens=0,
                     grid_h=10, grid_w=10, n_items=4, shard_size=4)  # fmt: skip
    w = CodesWriter(root / "sae" / "run1" / "codes", info, [f"img{i}" for i in range(4)])
    w.write_shard(0, torch.arange(4), dense_to_csr(torch.from_numpy(dense.reshape(400, 6))))
    cal = {"mean": 0.3, "sd": 0.1, "n_pairs": 10, "moderate": 0.4, "monosemantic": 0.5,
           "schema_version": 1}  # fmt: skip
    (root / "sae" / "run1" / "calibration.json").write_text(json.dumps(cal))
    return dense


def test_feature_values_and_patch_grid_equal_the_dense_codes(tmp_path: Path) -> None:
    from vislens.app import feature_detail as fd

    root = write_workbench_study(tmp_path)
    dense = _add_codes(root)
    store = fd.open_codes(root / "sae" / "run1" / "codes")
    assert store is not None
    for f in range(6):
        np.testing.assert_allclose(fd.feature_item_values(store, f), dense[:, :, f].max(1))
        np.testing.assert_allclose(
            fd.feature_item_values(store, f, "mean"), dense[:, :, f].mean(1), rtol=1e-6
        )
    # ... and equal to the store's own reduce over all features.
    for reduce in ("max", "mean"):
        m = store.item_matrix(reduce).toarray()
        for f in range(6):
            np.testing.assert_allclose(fd.feature_item_values(store, f, reduce), m[:, f], rtol=1e-6)
    g = fd.patch_grid(store, 2, 3)
    assert g is not None
    np.testing.assert_allclose(g, dense[2, :, 3].reshape(10, 10))
    assert fd.open_codes(root / "sae" / "nothing") is None


def test_histogram_and_band_figures() -> None:
    from vislens.app import feature_detail as fd

    v = np.array([0.0, 0.0, 1.0, 2.0, 2.5])
    h = fd.histogram_figure(v, 3)
    np.testing.assert_array_equal(h.data[0].x, [1.0, 2.0, 2.5])
    assert "3 of 5 items active (2 at zero" in h.layout.title.text
    cal = {"moderate": 0.4, "monosemantic": 0.5}
    b = fd.band_figure(0.45, cal)
    assert [(s.x0, s.x1, s.name) for s in b.layout.shapes] == [
        (0.0, 0.4, "polysemantic"),
        (0.4, 0.5, "moderate"),
        (0.5, 1.0, "monosemantic"),
    ]
    assert list(b.data[0].x) == [0.45]
    assert not fd.band_figure(float("nan"), cal).data  # undefined MS: bands, no marker
    assert fd.read_calibration(Path("/nonexistent/calibration.json")) is None


def test_feature_page_has_histogram_band_and_overlays(tmp_path: Path) -> None:
    from PIL import Image

    from vislens.app.study_pages import _feature_detail

    root = write_workbench_study(tmp_path)
    ctx = _ctx(root)
    scores = pd.read_parquet(root / "sae" / "run1" / "scores.parquet")
    (root / "sae" / "run1" / "calibration.json").unlink()
    before = _feature_detail(ctx, "run1", "3", scores)
    assert "vislens sae encode" in str(_by_id(before, "fd-hist").children)
    assert "No calibration.json" in str(_by_id(before, "fd-band").children)
    dense = _add_codes(root)
    page = _feature_detail(ctx, "run1", "3", scores)
    hist = _by_id(page, "fd-hist").figure
    np.testing.assert_allclose(sorted(hist.data[0].x), sorted(dense[[0, 2, 3], :, 3].max(1)))
    band = _by_id(page, "fd-band").figure
    ms = float(scores.loc[scores["feature"] == 3, "ms"].iloc[0])
    assert list(band.data[0].x) == [ms]
    imgs = [n for n in _walk(_by_id(page, "fd-top")) if type(n).__name__ == "Img"]
    assert len(imgs) == 4

    # Each overlay is viz.heatmap's overlay of the image's thumbnail with the dense codes'
    # patch grid, on one scale for all top images; item 1 (never fires) keeps its pixels.
    from vislens.viz.heatmap import overlay_heatmap

    def pixels(uri: str) -> np.ndarray:
        raw = base64.b64decode(uri.split(",", 1)[1])
        return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))

    src = pd.read_parquet(root / "images.parquet").set_index("item_id")["source"]
    by_alt = {i.alt: i.src for i in imgs}
    assert all(s.startswith("data:image/png;base64,") for s in by_alt.values())
    vmax = float(dense[:, :, 3].max())
    for i in range(4):
        with Image.open(src[f"img{i}"]) as im:
            im.thumbnail((256, 256))
            thumb = im.convert("RGB")
        want = overlay_heatmap(thumb, dense[i, :, 3].reshape(10, 10), vmax=vmax)
        np.testing.assert_array_equal(pixels(by_alt[f"img{i}"]), np.asarray(want))
        if i == 1:
            np.testing.assert_array_equal(pixels(by_alt["img1"]), np.asarray(thumb))


def test_probe_page_opens_on_a_case_with_a_target(tmp_path: Path) -> None:
    from vislens.app.probe_page import _probe

    root = write_workbench_study(tmp_path)
    ctx = _ctx(root)
    assert _by_id(_probe(ctx, "", {}), "pr-case").value == "case0"  # no target anywhere
    pc = root / "probe" / "reports" / "per_case.csv"
    cases = pd.read_csv(pc, dtype=str, keep_default_na=False)
    cases["evidence"] = ["[]", "[5]"]
    cases.to_csv(pc, index=False)
    assert _by_id(_probe(ctx, "", {}), "pr-case").value == "case1"
    cases.drop(columns=["evidence"]).to_csv(pc, index=False)  # an older file: no column
    assert _by_id(_probe(ctx, "", {}), "pr-case").value == "case0"


def test_probe_heatmap_lies_over_the_case_image(tmp_path: Path) -> None:
    from vislens.app.probe_page import case_image_url, probe_figure

    root = write_workbench_study(tmp_path)
    ctx = _ctx(root)
    src = pd.read_parquet(root / "images.parquet")["source"].astype(str).tolist()
    want = "/images/" + Path(src[1]).name
    assert case_image_url(ctx, src[1]) == want  # the path as written
    assert case_image_url(ctx, "images/" + Path(src[1]).name) == want  # relative to the world
    assert case_image_url(ctx, "images/nothing.png") == ""
    att = np.zeros((1, 1, 10, 10), dtype=np.float16)
    fig = probe_figure({"attention": att}, 0, 0, False, [], want)
    (img,) = fig.layout.images
    assert (img.source, img.x, img.y, img.sizex, img.sizey) == (want, -0.5, -0.5, 10, 10)
    assert fig.data[0].opacity < 1
    assert not probe_figure({"attention": att}, 0, 0, False, []).layout.images


def test_feature_values_of_a_cls_store_equal_the_store(tmp_path: Path) -> None:
    from vislens.app import feature_detail as fd
    from vislens.store.codes import CodesInfo, CodesWriter, dense_to_csr

    dense = np.array([[[0.0, 1.5, 0.0]], [[2.0, 0.0, 0.0]], [[0.0, 0.25, 0.0]]], np.float32)
    info = CodesInfo(d_sae=3, n_tokens=1, tokens="cls", has_cls=True, n_prefix_tokens=1,
                     grid_h=0, grid_w=0, n_items=3, shard_size=2)  # fmt: skip
    w = CodesWriter(tmp_path / "codes", info, ["a", "b", "c"])
    w.write_shard(0, torch.arange(2), dense_to_csr(torch.from_numpy(dense[:2, 0])))
    w.write_shard(1, torch.arange(2, 3), dense_to_csr(torch.from_numpy(dense[2:, 0])))
    store = fd.open_codes(tmp_path / "codes")
    m = store.item_matrix().toarray()
    for f in range(3):
        np.testing.assert_array_equal(fd.feature_item_values(store, f), dense[:, 0, f])
        np.testing.assert_array_equal(fd.feature_item_values(store, f), m[:, f])
    assert fd.patch_grid(store, 0, 1) is None  # no patch tokens: no overlay
