"""Shared test fixtures: paths to ../shared, and a skip marker for tests that need it."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
FIXTURES = SHARED / "fixtures"

# One intra-op thread for the whole session: the tests' tensors are small, so more threads gain little and
# oversubscribe a shared or two-core machine (CI included); a test that changes it puts it back.
torch.set_num_threads(1)

# Exported ONNX graphs (the CPU runtimes' cache) go to a folder of the test session's, never the user's cache.
if "WEATHERSTUDIO_CACHE" not in os.environ:
    os.environ["WEATHERSTUDIO_CACHE"] = tempfile.mkdtemp(prefix="weatherstudio-test-cache-")
    atexit.register(shutil.rmtree, os.environ["WEATHERSTUDIO_CACHE"], True)

needs_shared = pytest.mark.skipif(
    not (SHARED / "fixtures" / "lpnet_reference").is_dir(),
    reason="needs ../shared (research data and the LPNet reference fixture), which is not beside this checkout",
)


@pytest.fixture
def rng() -> np.random.Generator:  # noqa: F821
    import numpy as np

    return np.random.default_rng(1234)
