"""Image sources: folder, CSV/JSONL manifests, grid world; bad input gives one clear error."""

from __future__ import annotations

import socket
import threading

import numpy as np
import pytest
from PIL import Image

from vislens.data.sources import FolderSource, ImageRecord, ManifestSource, load_image, open_source
from vislens.data.synthetic import generate_grid_world
from vislens.data.table import build_image_table
from vislens.errors import InputError


def _png(path, color=(255, 0, 0), size=(20, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def test_folder_source_recursive_sorted(tmp_path):
    _png(tmp_path / "b.png")
    _png(tmp_path / "sub" / "a.jpg")
    (tmp_path / "notes.txt").write_text("x")
    recs = FolderSource(tmp_path).records()
    assert [r.item_id for r in recs] == ["b.png", "sub/a.jpg"]
    assert load_image(recs[0]).size == (20, 10)


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(InputError, match="no images found"):
        FolderSource(tmp_path).records()


def test_csv_manifest_keeps_extra_columns_and_resolves_paths(tmp_path):
    _png(tmp_path / "imgs" / "x.png")
    (tmp_path / "m.csv").write_text("id,file_name,mirror_self,split\nitem1,imgs/x.png,4.5,test\n")
    source = open_source(tmp_path / "m.csv")
    [rec] = source.records()
    assert rec.item_id == "item1"
    assert rec.source == str((tmp_path / "imgs" / "x.png").resolve())
    assert rec.metadata == {"mirror_self": "4.5", "split": "test"}
    table = build_image_table(source)
    assert list(table.columns[:5]) == ["item_id", "source", "width", "height", "split"]
    assert table.loc[0, "split"] == "test" and table.loc[0, "mirror_self"] == "4.5"
    assert (table.loc[0, "width"], table.loc[0, "height"]) == (20, 10)


def test_jsonl_manifest(tmp_path):
    _png(tmp_path / "a.png")
    (tmp_path / "m.jsonl").write_text('{"image": "a.png", "label": "cat", "tags": ["x"]}\n')
    [rec] = ManifestSource(tmp_path / "m.jsonl").records()
    assert rec.item_id == "a" and rec.metadata == {"label": "cat", "tags": ["x"]}


@pytest.mark.parametrize(
    ("content", "suffix", "match"),
    [
        ("name\nfoo\n", ".csv", "no image column"),
        ("path\n\n", ".csv", "no rows"),
        ('{"path": "a.png"}\nnot json\n', ".jsonl", r"m.jsonl:2: not valid JSON"),
        ('["a.png"]\n', ".jsonl", "must be a JSON object"),
        ("id,path\nx,a.png\nx,b.png\n", ".csv", "repeats row 2"),
        ("id,path\nx,\n", ".csv", "row 2: empty 'path'"),
    ],
)
def test_malformed_manifest_names_the_problem(tmp_path, content, suffix, match):
    p = tmp_path / f"m{suffix}"
    p.write_text(content)
    with pytest.raises(InputError, match=match):
        ManifestSource(p).records()


def test_missing_and_corrupt_images_name_the_item(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not an image at all")
    (tmp_path / "m.csv").write_text("id,path\nok,good.png\nbroken,bad.png\n")
    _png(tmp_path / "good.png")
    recs = ManifestSource(tmp_path / "m.csv").records()
    with pytest.raises(InputError, match=r"item 'broken'.*not a readable image"):
        load_image(recs[1])
    with pytest.raises(InputError, match=r"item 'gone'.*file not found"):
        load_image(ImageRecord("gone", str(tmp_path / "gone.png")))
    with pytest.raises(InputError, match="'broken'"):
        build_image_table(ManifestSource(tmp_path / "m.csv"))


def test_url_without_answer_is_a_clear_error_not_a_hang(tmp_path):
    """A server that accepts the connection and never answers: the timeout fires, the error names the item."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    held = []
    t = threading.Thread(target=lambda: held.append(srv.accept()), daemon=True)
    t.start()
    try:
        rec = ImageRecord("remote", f"http://127.0.0.1:{port}/x.png")
        with pytest.raises(InputError, match=r"item 'remote'.*could not fetch"):
            load_image(rec, url_timeout_s=0.5)
    finally:
        srv.close()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(InputError, match="could not fetch"):
        load_image(ImageRecord("refused", f"http://127.0.0.1:{dead_port}/x.png"), url_timeout_s=0.5)


def test_synthetic_source_carries_objects_and_captions(tmp_path):
    generate_grid_world(tmp_path / "w", 4, seed=0, show_progress=False)
    source = open_source(tmp_path / "w")
    recs = source.records()
    assert [r.item_id for r in recs] == ["img_00001", "img_00002", "img_00003", "img_00004"]
    assert recs[0].metadata["caption"].startswith(("a ", "an "))
    assert recs[0].metadata["grid"] == 10
    img = np.asarray(load_image(recs[0]))
    assert img.shape == (280, 280, 3)


def test_missing_source_and_bad_kind(tmp_path):
    with pytest.raises(InputError, match="not found"):
        open_source(tmp_path / "nope")
    with pytest.raises(InputError, match="choose auto"):
        open_source(tmp_path, kind="zip")
