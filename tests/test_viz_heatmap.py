"""Heatmap overlays, and rating-task cards that carry them straight from an SAE run."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vislens.viz.heatmap import overlay_heatmap


def _reference_overlay(rgb: np.ndarray, grid: np.ndarray, alpha: float) -> np.ndarray:
    """Pixel by pixel: find the pixel's cell, blend towards red by alpha * value / max."""
    h, w = rgb.shape[:2]
    out = np.empty_like(rgb, dtype=np.float64)
    gh, gw = grid.shape
    for y in range(h):
        for x in range(w):
            v = grid[y * gh // h, x * gw // w] / grid.max()
            a = alpha * v
            out[y, x] = rgb[y, x] * (1 - a) + np.array([255, 0, 0]) * a
    return np.round(out).astype(np.uint8)


def test_overlay_equals_pixelwise_reference():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (30, 42, 3), dtype=np.uint8)
    grid = rng.random((3, 7)).astype(np.float32)
    grid[0, 0] = 0.0
    got = np.asarray(overlay_heatmap(Image.fromarray(rgb), grid, alpha=0.5))
    np.testing.assert_allclose(
        got.astype(int), _reference_overlay(rgb, grid, 0.5).astype(int), atol=1
    )
    assert np.array_equal(got[:10, :6], rgb[:10, :6])  # a zero cell keeps its pixels


def test_all_zero_grid_changes_nothing():
    rgb = np.full((8, 8, 3), 77, np.uint8)
    got = overlay_heatmap(Image.fromarray(rgb), np.zeros((2, 2), np.float32))
    assert np.array_equal(np.asarray(got), rgb)


@pytest.mark.slow
def test_rating_cards_from_sae_run_have_heatmaps(tmp_path, tiny_vision):
    from helpers_sae import random_sae
    from vislens.data.setup import init_study
    from vislens.data.synthetic import generate_grid_world
    from vislens.human.tasks import cards_from_sae
    from vislens.sae.formats.saelens import save_saelens
    from vislens.sae.inspect import feature_heatmap
    from vislens.sae.runs import encode_study, open_codes, topk_study
    from vislens.store.extract import extract

    generate_grid_world(tmp_path / "w", 6, seed=2, show_progress=False)
    study = init_study(
        tmp_path / "s",
        images=str(tmp_path / "w"),
        model=str(tiny_vision("clip")),
        layers=[2],
        tokens="all",
    )
    extract(study)
    save_saelens(random_sae("standard", d_in=32, d_sae=16), tmp_path / "sae")
    encode_study(study, sae_ref=str(tmp_path / "sae"), name="r")
    topk_study(study, name="r", k=3)
    cards = cards_from_sae(study, "r", n_images=3)
    assert cards
    codes = open_codes(study, "r")
    for card in cards[:3]:
        assert len(card["heatmaps"]) == len(card["images"]) > 0
        for image_path, heat_path in zip(card["images"], card["heatmaps"], strict=True):
            heat = Image.open(heat_path)
            assert heat.size == Image.open(image_path).size
        # The overlay is the same picture the library draws from the feature's patch codes.
        import pandas as pd

        topk = pd.read_parquet(study.sae_dir("r") / "topk.parquet")
        first = topk[(topk["feature"] == int(card["feature_id"])) & (topk["rank"] == 0)].iloc[0]
        grid = feature_heatmap(codes, int(first["item_index"]), int(card["feature_id"]))
        expect = overlay_heatmap(Image.open(card["images"][0]), grid)
        assert np.array_equal(np.asarray(Image.open(card["heatmaps"][0])), np.asarray(expect))
