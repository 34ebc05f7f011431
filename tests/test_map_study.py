"""`vislens map`: activations / embeddings → PCA / UMAP → STUDY/map/ in seed 003's layout,
read back by the explorer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from helpers_human import make_study
from vislens.app.explorer_data import ExplorerData
from vislens.errors import InputError
from vislens.map.run import map_study
from vislens.map.write import MAP_ENTRY_KEYS, METADATA_COLUMNS
from vislens.study import Study

N = 24


@pytest.fixture()
def study(tmp_path: Path) -> Study:
    """A study with an image folder, its image table and a one-layer activation store whose
    vectors fall in two clusters by label."""
    from PIL import Image

    from vislens.data.table import write_image_table
    from vislens.store.activations import ActivationWriter, StoreInfo, items_digest

    st = make_study(tmp_path / "st")
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    ids, rows = [], []
    for i in range(N):
        p = folder / "sub" / f"im{i:03d}.png"
        Image.new("RGB", (8, 8), "red" if i % 2 else "blue").save(p)
        ids.append(f"im{i:03d}")
        rows.append({"item_id": ids[-1], "source": str(p), "width": 8, "height": 8, "split": "", "label": ["even", "odd"][i % 2]})  # fmt: skip
    write_image_table(pd.DataFrame(rows), st.images_path)
    st.config.images.source = str(folder)
    st.save()
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(N, 16)).astype(np.float32)
    acts[1::2] += 8.0
    info = StoreInfo(
        model="toy", model_type="vision", layers=[3], tokens="cls", has_cls=True,
        n_prefix_tokens=1, grid_h=1, grid_w=1, n_tokens=1, d_model=16, dtype="float32",
        shard_size=10, n_items=N, items_sha256=items_digest(ids),
    )  # fmt: skip
    w = ActivationWriter(st.activations_dir, info, ids)
    for k in range(info.n_shards):
        a, b = info.shard_bounds(k)
        w.write_shard(k, {3: torch.from_numpy(acts[a:b])})
    emb = pd.DataFrame({"item_id": ids, "embedding": [list(v) for v in acts[:, :8]]})
    emb.to_parquet(tmp_path / "emb.parquet")
    return st


def test_pca_map_of_activations_in_the_seed_layout(study: Study) -> None:
    from sklearn.decomposition import PCA

    path = map_study(study.root, source="activations", method="pca")
    assert path == study.map_dir / "activations_pca_coords.npy"
    coords = np.load(path)
    assert coords.shape == (N, 2) and coords.dtype == np.float32
    meta = pd.read_csv(study.map_dir / "metadata.csv")
    assert list(meta.columns[: len(METADATA_COLUMNS)]) == list(METADATA_COLUMNS)
    assert meta["item_id"].tolist() == [f"im{i:03d}" for i in range(N)]
    assert meta["file_name"].iloc[0] == "sub/im000.png"  # relative to the image folder
    # The same numbers as scikit-learn's PCA on the same rows.
    from vislens.store.activations import ActivationStore

    x = ActivationStore.open(study.activations_dir).load(3).numpy()
    want = PCA(n_components=2, random_state=0).fit_transform(x).astype(np.float32)
    np.testing.assert_allclose(coords, want, rtol=1e-4, atol=1e-4)
    maps = json.loads((study.map_dir / "maps.json").read_text())
    assert set(maps["maps"]["activations_pca"]) == set(MAP_ENTRY_KEYS)
    # The explorer reads it: images served from the study's image folder.
    from vislens.app.explorer_page import study_data
    from vislens.app.shell import create_app

    app = create_app(study)
    views, problem = study_data(app.vislens_context)
    assert problem == "" and views is not None
    # Coloured by the first column with 2-24 values: `split` is empty here, `label` varies.
    assert views.data.n == N and views.data.color_by == "label"
    client = app.server.test_client()
    assert client.get("/images/sub/im003.png").status_code == 200


@pytest.mark.slow
def test_umap_map_separates_the_clusters(study: Study, tmp_path: Path) -> None:
    path = map_study(
        study.root, source="embeddings", method="umap", embeddings_file=tmp_path / "emb.parquet"
    )
    coords = np.load(path)
    odd = np.arange(N) % 2 == 1
    gap = np.linalg.norm(coords[odd].mean(0) - coords[~odd].mean(0))
    spread = max(coords[odd].std(0).max(), coords[~odd].std(0).max())
    assert gap > 2 * spread
    data = ExplorerData.load(study.map_dir, path.name)
    assert data.n == N


def test_bad_requests_write_nothing(study: Study, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--source 'pixels'"):
        map_study(study.root, source="pixels")
    with pytest.raises(InputError, match="--method 'tsne'"):
        map_study(study.root, method="tsne")
    with pytest.raises(InputError, match="layer 7 was not extracted"):
        map_study(study.root, method="pca", layer=7)
    with pytest.raises(InputError, match="--name"):
        map_study(study.root, method="pca", name="../evil")
    assert not study.map_dir.exists() or not any(study.map_dir.iterdir())


def test_a_map_over_other_items_does_not_unpair_existing_ones(study: Study, tmp_path: Path) -> None:
    map_study(study.root, source="activations", method="pca")
    from vislens.map import write

    meta = pd.read_csv(study.map_dir / "metadata.csv", dtype=str).iloc[::-1]
    with pytest.raises(InputError, match=r"would unpair activations_pca_coords\.npy"):
        write.write_map(study.map_dir, meta, np.zeros((N, 2)), "other", {})
    assert not (study.map_dir / "other_coords.npy").exists()
    write.write_map(study.map_dir, meta, np.zeros((N, 2)), "other", {}, replace_metadata=True)
    assert sorted(p.name for p in study.map_dir.glob("*_coords.npy")) == ["other_coords.npy"]
