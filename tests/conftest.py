"""Shared test setup: every test is seeded, quiet and offline."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

os.environ.setdefault("VISLENS_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    """The same random numbers in every test, whatever order tests run in."""
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_vision(tmp_path_factory: pytest.TempPathFactory):
    """``tiny_vision("clip")`` -> directory of a tiny random-weight encoder (built once per session).

    Keyword arguments go to ``vislens.models.tiny.build_tiny_vision`` (image_size, patch_size, ...).
    """
    from vislens.models.tiny import build_tiny_vision

    cache: dict[tuple, object] = {}

    def get(arch: str = "clip", **kwargs):
        key = (arch, tuple(sorted(kwargs.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp(f"tiny-{arch}")
            cache[key] = build_tiny_vision(arch, out, **kwargs)  # type: ignore[arg-type]
        return cache[key]

    return get
