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
