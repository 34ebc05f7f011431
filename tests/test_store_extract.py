"""`vislens extract`: equal to a direct forward pass, resumable after SIGKILL, clear on bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from vislens.data.setup import init_study
from vislens.data.sources import load_image
from vislens.data.synthetic import generate_grid_world
from vislens.data.table import read_records
from vislens.errors import ConfigError, InputError
from vislens.models.tiny import ARCHES
from vislens.models.vision import load_vision_encoder
from vislens.store.activations import ActivationStore
from vislens.store.extract import extract
from vislens.study import Study


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world") / "w"
    generate_grid_world(out, 10, seed=0, show_progress=False)
    return out


@pytest.mark.parametrize("arch", ARCHES)
def test_activations_equal_direct_forward(tmp_path, tiny_vision, world, arch):
    model_dir = tiny_vision(arch)
    study = init_study(
        tmp_path / "s", images=str(world), model=str(model_dir), layers=[0, 2, -1], tokens="all"
    )
    result = extract(study, batch_size=3, shard_size=4)
    assert (result.n_items, result.n_shards, result.n_shards_written) == (10, 3, 3)
    store = ActivationStore.open(study.activations_dir)
    enc = load_vision_encoder(str(model_dir))
    images = [load_image(r) for r in read_records(study.images_path)]
    ref = enc.model(pixel_values=enc.preprocess(images), output_hidden_states=True).hidden_states
    assert store.layers == [0, 2, enc.n_layers]
    for layer in store.layers:
        # Batches of 3 vs one batch of 10: equal up to float rounding of the batched matmuls.
        torch.testing.assert_close(store.load(layer), ref[layer], rtol=1e-5, atol=1e-5)
    saved = Study.open(study.root).config.extract
    assert (saved.batch_size, saved.shard_size, saved.layers) == (3, 4, [0, 2, -1])


@pytest.mark.parametrize(
    ("tokens", "shape"), [("cls", (10, 32)), ("mean", (10, 32)), ("patches", (10, 16, 32))]
)
def test_token_modes(tmp_path, tiny_vision, world, tokens, shape):
    study = init_study(
        tmp_path / "s",
        images=str(world),
        model=str(tiny_vision("clip")),
        layers=[-1],
        tokens=tokens,
    )
    extract(study, batch_size=5)
    store = ActivationStore.open(study.activations_dir)
    acts = store.load(store.layers[0])
    assert tuple(acts.shape) == shape
    assert store.info.n_tokens == (1 if len(shape) == 2 else shape[1])


def test_store_dtype_option(tmp_path, tiny_vision, world):
    study = init_study(
        tmp_path / "s",
        images=str(world),
        model=str(tiny_vision("dinov2")),
        layers=[1],
        tokens="cls",
    )
    study.config.extract.dtype = "float16"
    extract(study)
    assert ActivationStore.open(study.activations_dir).load(1).dtype == torch.float16


def _run_extract(study_dir: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, VISLENS_NO_PROGRESS="1", HF_HUB_OFFLINE="1")
    return subprocess.Popen(
        [sys.executable, "-m", "vislens.cli", "extract", str(study_dir), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_kill_and_resume_is_identical(tmp_path, tiny_vision):
    world = tmp_path / "w"
    generate_grid_world(world, 240, seed=5, show_progress=False)
    model = str(tiny_vision("clip", image_size=280, patch_size=28, n_layers=4, hidden_size=64))
    args = ("--shard-size", "16", "--batch-size", "8")
    ref = init_study(tmp_path / "ref", images=str(world), model=model, layers=[1, -1], tokens="all")
    assert _run_extract(ref.root, *args).wait(timeout=600) == 0

    killed = init_study(
        tmp_path / "killed", images=str(world), model=model, layers=[1, -1], tokens="all"
    )
    proc = _run_extract(killed.root, *args)
    manifest_path = killed.activations_dir / "manifest.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        if manifest_path.exists():
            done = json.loads(manifest_path.read_text())["complete_shards"]
            if len(done) >= 2:
                break
        assert proc.poll() is None, "extract finished before it could be killed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = json.loads(manifest_path.read_text())["complete_shards"]
    assert 2 <= len(partial) < 15
    out, err = _run_extract(killed.root, *args).communicate(timeout=600)
    assert b"already done" in out, err.decode()

    a, b = ActivationStore.open(ref.activations_dir), ActivationStore.open(killed.activations_dir)
    assert a.is_complete and b.is_complete and a.info == b.info
    files_a = sorted(
        p.relative_to(ref.activations_dir) for p in ref.activations_dir.rglob("*.safetensors")
    )
    files_b = sorted(
        p.relative_to(killed.activations_dir) for p in killed.activations_dir.rglob("*.safetensors")
    )
    assert files_a == files_b and len(files_a) == 2 * 15
    for rel in files_a:
        ta, tb = (
            load_file(str(ref.activations_dir / rel)),
            load_file(str(killed.activations_dir / rel)),
        )
        assert torch.equal(ta["acts"], tb["acts"]) and torch.equal(
            ta["item_index"], tb["item_index"]
        )
    assert not list(killed.activations_dir.rglob("*.tmp"))


def test_corrupt_image_mid_run_names_it_and_leaves_only_whole_shards(tmp_path, tiny_vision, world):
    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(9):
        Image.open(world / "images" / f"img_{i + 1:05d}.png").save(images / f"{i}.png")
    study = init_study(
        tmp_path / "s", images=str(images), model=str(tiny_vision("vit")), layers=[1], tokens="cls"
    )
    (images / "5.png").write_bytes(
        (images / "5.png").read_bytes()[:200]
    )  # truncated after indexing
    with pytest.raises(InputError, match=r"item '5.png'"):
        extract(study, shard_size=3, batch_size=3)
    store = ActivationStore.open(study.activations_dir)
    assert store.complete_shards == [0]
    assert sorted(p.name for p in (study.activations_dir / "layer_01").iterdir()) == [
        "shard_00000.safetensors"
    ]
    Image.open(world / "images" / "img_00006.png").save(images / "5.png")
    result = extract(study, shard_size=3, batch_size=3)
    assert result.n_shards_written == 2 and ActivationStore.open(study.activations_dir).is_complete


def test_bad_inputs_write_nothing(tmp_path, tiny_vision, world):
    with pytest.raises(InputError, match="image source not found"):
        init_study(tmp_path / "a", images=str(tmp_path / "empty_dir_missing"), model="x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images found"):
        init_study(tmp_path / "b", images=str(tmp_path / "empty"))
    assert not (tmp_path / "b").exists()
    study = init_study(tmp_path / "c", images=str(world))
    with pytest.raises(ConfigError, match=r"model.name_or_path"):
        extract(study)
    study.config.model.name_or_path = str(tiny_vision("clip"))
    from vislens.errors import ModelError

    with pytest.raises(ModelError, match="out of range"):
        extract(study, layers=[40])
    assert not (study.activations_dir / "manifest.json").exists()


def test_cli_extract_and_errors(tmp_path, tiny_vision, world):
    model = str(tiny_vision("clip"))
    env = dict(os.environ, VISLENS_NO_PROGRESS="1", HF_HUB_OFFLINE="1")

    def run(*a: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "vislens.cli", *a]
        return subprocess.run(cmd, env=env, capture_output=True, text=True)

    r = run(
        "init",
        str(tmp_path / "s"),
        "--images",
        str(world),
        "--model",
        model,
        "--layers",
        "1,-1",
        "--tokens",
        "cls",
    )
    assert r.returncode == 0, r.stderr
    r = run("extract", str(tmp_path / "s"))
    assert r.returncode == 0 and "throughput" in r.stdout, r.stderr
    r = run("extract", str(tmp_path / "s"), "--layers", "9")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "out of range" in r.stderr
    r = run("extract", str(tmp_path / "nope"))
    assert r.returncode == 2 and "vislens init" in r.stderr
