"""The Ray engine's pieces that need no cluster: sizing, error transport, missing Ray."""

from __future__ import annotations

import sys

import pytest

from vislens.engine.ray_data import RayOptions, _resources, _user_error, require_ray
from vislens.errors import ConfigError, InputError, ModelError, VislensError


class FakeRay:
    def __init__(self, **resources: float) -> None:
        self.resources = resources

    def cluster_resources(self) -> dict[str, float]:
        return self.resources


@pytest.mark.parametrize(
    ("resources", "options", "expected"),
    [
        ({"CPU": 2.0}, RayOptions(), (2, 0.0)),
        ({"CPU": 8.0}, RayOptions(num_cpus=3), (2, 0.0)),
        ({"CPU": 1.0}, RayOptions(num_cpus=4), (1, 0.0)),
        ({"CPU": 64.0, "GPU": 8.0}, RayOptions(), (8, 1.0)),
        ({"CPU": 64.0, "GPU": 8.0}, RayOptions(num_gpus=0.5), (16, 0.5)),
        ({"CPU": 64.0, "GPU": 8.0}, RayOptions(num_gpus=0), (64, 0)),
        ({"CPU": 64.0, "GPU": 8.0}, RayOptions(n_actors=3), (3, 1.0)),
    ],
)
def test_actor_pool_size_follows_the_cluster(resources, options, expected):
    assert _resources(FakeRay(**resources), options) == expected


@pytest.mark.parametrize("cls", [InputError, ModelError, ConfigError, VislensError])
def test_user_errors_cross_the_actor_boundary_as_themselves(cls):
    text = f"{cls.__name__}:item 'a:b.png': cannot decode"
    err = _user_error(text)
    assert type(err) is cls and str(err) == "item 'a:b.png': cannot decode"


def test_unknown_error_names_fall_back_to_the_base_class():
    assert type(_user_error("OSError:disk")) is VislensError
    assert type(_user_error("RayOptions:x")) is VislensError


def test_missing_ray_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"vislens\[ray\]"):
        require_ray()


def test_unknown_engine_is_refused_before_anything_is_written(tmp_path):
    from vislens.data.setup import init_study
    from vislens.data.synthetic import generate_grid_world
    from vislens.store.extract import extract

    generate_grid_world(tmp_path / "w", 2, seed=0, show_progress=False)
    study = init_study(tmp_path / "s", images=str(tmp_path / "w"), model="toy")
    with pytest.raises(ConfigError, match="engine 'spark'"):
        extract(study, engine="spark")
    assert not (study.activations_dir / "manifest.json").exists()
