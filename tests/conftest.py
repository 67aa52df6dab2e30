"""Shared fixtures: tiny real images, the real weights, and a clean plugin manager per test."""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["NSTCORE_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only nstcore's own entry points
os.environ.pop("NSTCORE_BACKEND", None)  # the suite runs on tensorflow; tests/test_backends.py
os.environ.pop("KERAS_BACKEND", None)  # starts a process of its own for each other backend

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
for path in (str(ROOT), str(TESTS)):
    if path not in sys.path:
        sys.path.insert(0, path)

from nstcore import plugins  # noqa: E402
from nstcore.run import asset  # noqa: E402

CONTENT = asset("astronaut.png")
STYLE = asset("starry_night.jpg")


@pytest.fixture(autouse=True)
def fresh_plugins(monkeypatch):
    monkeypatch.delenv("NSTCORE_PLUGINS", raising=False)
    monkeypatch.delenv("NSTCORE_DISABLE_PLUGINS", raising=False)
    plugins.reset_plugin_manager()
    yield
    plugins.reset_plugin_manager()


@pytest.fixture(scope="session")
def weights_path() -> str:
    """The real ImageNet VGG19 weights (make test fetches them before the suite runs)."""
    from nstcore_builtins.weights import resolve

    return resolve(fetch_if_missing=True).path


@pytest.fixture(scope="session")
def tiny_pair():
    """Astronaut and Starry Night with long side 64, as the engine receives them."""
    from nstcore.run import load_inputs

    return load_inputs(str(CONTENT), str(STYLE), 64)


@pytest.fixture
def image_files(tmp_path):
    """Small content and style files on disk (fast to load), plus the folder."""
    from PIL import Image

    content = tmp_path / "content.png"
    style = tmp_path / "style.jpg"
    Image.open(CONTENT).convert("RGB").resize((64, 64)).save(content)
    Image.open(STYLE).convert("RGB").resize((80, 64)).save(style)
    return content, style


def numpy_allclose(a, b, rtol=1e-5, atol=0.0):
    return np.allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)
