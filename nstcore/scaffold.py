"""``nstcore new-plugin NAME``: write a ready-to-install loss plugin whose tests pass as written."""
from __future__ import annotations

import re
from pathlib import Path

from nstcore.errors import InputError

_PYPROJECT = '''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "An nstcore loss plugin"
requires-python = ">=3.10"
dependencies = ["nstcore"]

[project.entry-points.nstcore]
{name} = "{package}"

[tool.setuptools]
packages = ["{package}"]
'''

_INIT = '''"""nstcore plugin registering the ``{name}`` loss.

The class is named as a "module:attribute" string, so ``nstcore plugins`` lists it without
importing TensorFlow; ``backends`` says it runs on every backend (it uses keras.ops only: a
loss written with tf.* leaves ``backends`` out and runs on TensorFlow alone).
"""
import nstcore
from nstcore.backends import ALL


@nstcore.hookimpl
def register_losses(register):
    register("{name}", "{package}.loss:{cls}", description="describe your loss here",
             backends=ALL)
'''

_LOSS = '''"""The ``{name}`` loss. Start here: change ``prepare`` and ``__call__``."""
from __future__ import annotations

from typing import Any

from nstcore import backends
from nstcore.extractor import Features
from nstcore.loss import Loss

ops = backends.ops()  # keras.ops on the run's backend: TensorFlow, JAX or PyTorch


class {cls}(Loss):
    """Example: match each style layer's mean activation (replace with your idea)."""

    role = "style"  # "content", "style" or "regularizer": which --*-weight/--*-layers apply
    backends = backends.ALL  # keras.ops only; with tf.* code, delete this line (TensorFlow alone)
    default_weight = 1e2
    default_layers = ("block1_conv1", "block2_conv1", "block3_conv1")

    def prepare(self, content: Features, style: Features) -> None:
        # Runs once: compute targets from the style (or content) image's features.
        self.targets = {{name: ops.mean(style[name], axis=[1, 2]) for name in self.layers}}

    def __call__(self, features: Features, image: Any) -> Any:
        # Runs every step, traced (tf.function, jax.jit): keras.ops only, return an unweighted
        # scalar; no .numpy(), no Python if on a tensor's value.
        terms = [ops.mean(ops.square(ops.mean(features[name], axis=[1, 2]) - self.targets[name]))
                 for name in self.layers]
        return self.mean_over_layers(terms)  # honours --style-layers NAME:WEIGHT
'''

_TEST = '''"""Contract checks from nstcore's test kit, plus a test of your own."""
from nstcore import backends
from nstcore.testing import TinyVGG, check_loss, tiny_images
from {package}.loss import {cls}


def test_honours_the_loss_contract():
    # the name you register must be free; `pytest -s` prints which checks ran (and any skipped)
    print("\\n".join(check_loss({cls}, name="{name}")))


def test_found_through_its_entry_point(nstcore_plugins):
    # nstcore_plugins (a fixture nstcore provides to pytest) sees what `nstcore plugins` sees
    assert nstcore_plugins.registry.get("loss", "{name}").plugin.distribution == "{dist}"


def test_is_zero_when_the_image_is_the_style_image():
    extractor = TinyVGG()
    loss = {cls}()
    extractor.select(loss.layers)
    content, style, _ = tiny_images()
    loss.prepare(extractor(content[None]), extractor(style[None]))
    assert float(loss(extractor(backends.constant(style[None])), style[None])) < 1e-10
'''

_README = '''# {dist}

An nstcore loss plugin (made by `nstcore new-plugin {name}`).

```sh
pip install -e .
nstcore plugins                       # lists: loss {name} ... {dist} 0.1.0
nstcore run content.jpg style.jpg -o out.png --losses content,{name},tv
pytest tests
```
'''


def new_plugin(name: str, parent: Path = Path(".")) -> Path:
    """Write ``nstcore-NAME/`` under ``parent`` and return its path."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise InputError(f"plugin name '{name}' must be lower case letters, digits and _,"
                         " starting with a letter (it becomes the loss name)")
    dist = f"nstcore-{name.replace('_', '-')}"
    package = f"nstcore_{name}"
    cls = "".join(part.capitalize() for part in name.split("_")) + "Loss"
    root = parent / dist
    if root.exists():
        raise InputError(f"{root} already exists; choose another name or remove it")
    if not parent.is_dir():
        raise InputError(f"{parent} is not a folder")
    values = dict(name=name, dist=dist, package=package, cls=cls)
    files = {
        "pyproject.toml": _PYPROJECT, "README.md": _README, f"{package}/__init__.py": _INIT,
        f"{package}/loss.py": _LOSS, f"tests/test_{name}.py": _TEST,
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values))
    return root
