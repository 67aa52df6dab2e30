"""A second extractor, written as a third-party plugin would write it, with no core change.

Its own two-layer network, its own weights file (an ``.npz`` that its own subcommand
``nstcore tinynet-init`` writes), and declared options with a shorthand flag.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

import nstcore
from nstcore.errors import InputError
from nstcore.extractor import FeatureExtractor
from nstcore.options import Option

LAYERS = ("edge1", "edge2")


@nstcore.hookimpl
def register_extractors(register):
    register("tinynet", "tinynet_plugin:TinyNet", description="test: two conv layers from an .npz",
             options=[Option("weights_file", "path", None, "weights written by `nstcore tinynet-init`",
                             flag="--tinynet-weights"),
                      Option("pool", bool, True, "2x2 average pool between the layers")])


@nstcore.hookimpl
def register_commands(subparsers):
    parser = subparsers.add_parser("tinynet-init", help="write random TinyNet weights to an .npz")
    parser.add_argument("path")
    parser.add_argument("--channels", type=int, default=4)
    parser.set_defaults(handler=_init)


def _init(args) -> int:
    rng = np.random.default_rng(0)
    c = args.channels
    np.savez(args.path, k1=rng.normal(0, 0.4, (3, 3, 3, c)).astype(np.float32),
             k2=rng.normal(0, 0.3, (3, 3, c, c)).astype(np.float32))
    print(f"wrote {args.path}")
    return 0


class TinyNet(FeatureExtractor):
    layers = LAYERS

    def __init__(self, weights_file: str | None = None, pool: bool = True) -> None:
        if weights_file is None:
            raise InputError("tinynet needs --tinynet-weights FILE (`nstcore tinynet-init FILE`)")
        with np.load(weights_file, allow_pickle=False) as data:
            self.kernels = [data["k1"], data["k2"]]
        self.pool = pool
        self.selected: tuple[str, ...] = ()

    def select(self, layers: Sequence[str]) -> None:
        self.selected = tuple(layers)

    def preprocess(self, image: Any) -> Any:
        return image * 2.0 - 1.0

    def __call__(self, image: Any):
        import tensorflow as tf

        x = tf.nn.relu(tf.nn.conv2d(self.preprocess(image), self.kernels[0], 1, "SAME"))
        features = {"edge1": x}
        if self.pool:
            x = tf.nn.avg_pool2d(x, 2, 2, "VALID")
        features["edge2"] = tf.nn.relu(tf.nn.conv2d(x, self.kernels[1], 1, "SAME"))
        return {name: features[name] for name in self.selected}

    def describe(self) -> dict[str, Any]:
        return {"network": "tinynet", "pool": self.pool}
