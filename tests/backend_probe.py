"""Run in a process of its own by tests/test_backends.py: one backend per process (Keras picks
its backend once). Prints one JSON line: the backend, whether TensorFlow got imported, and the
numbers the test compares across backends, all from the same inputs (arrays, not files, so no
backend's resize is involved)."""
from __future__ import annotations

import json
import sys

import numpy as np

from nstcore import backends

backends.choose(sys.argv[1])
what = sys.argv[2]

from nstcore.engine import Engine  # noqa: E402
from nstcore.imageio import load_image  # noqa: E402
from nstcore.run import asset  # noqa: E402
from nstcore_builtins.adam import Adam  # noqa: E402
from nstcore_builtins.content import ContentLoss  # noqa: E402
from nstcore_builtins.gram import GramStyleLoss  # noqa: E402
from nstcore_builtins.lbfgs import LBFGS  # noqa: E402
from nstcore_builtins.tv import TotalVariationLoss  # noqa: E402
from nstcore_builtins.vgg19 import VGG19Extractor  # noqa: E402

# 96 x 96 and 72 x 96 by plain subsampling: the same arrays on every backend
content = load_image(asset("astronaut.png"))[::5, ::5][:96, :96].copy()
style = load_image(asset("starry_night.jpg"))[::4, ::4][:72, :96].copy()


def engine(solver, plugins=False):
    if plugins:  # the example plugins, written with keras.ops
        from nstcore_meanstd.loss import MeanStdStyleLoss
        from nstcore_wasserstein.loss import GaussianW2StyleLoss

        losses = [ContentLoss(), MeanStdStyleLoss(), GaussianW2StyleLoss()]
    else:
        losses = [ContentLoss(), GramStyleLoss(), TotalVariationLoss()]
    return Engine(extractor, losses, solver)


def rows(result):
    return [{k: float(v) for k, v in row.items()} for row in result.losses]


extractor = VGG19Extractor(precision="float32", fetch_if_missing=False)
out = {"backend": backends.current()}
for what in sys.argv[2].split(","):
    if what == "gradient":  # the objective and its gradient at the photo
        backend = backends.get()
        run = engine(Adam())
        run.prepare(content, style)
        total, terms, gradient = backend.compile(backend.value_and_grad(run.objective))(
            backends.constant(content[None]))
        out[what] = {"total": float(total), "gradient": backends.to_numpy(gradient).ravel().tolist()}
    elif what in ("adam", "plugins", "lbfgs"):
        result = engine(LBFGS() if what == "lbfgs" else Adam(), plugins=what == "plugins").run(
            content, style, 5 if what == "lbfgs" else 10)
        out[what] = {"losses": rows(result), "stopped": result.stopped}
    elif what == "masked":  # a half mask, a two-level pyramid with a margin, Adam's moments carried
        mask = np.zeros((96, 96), np.float32)
        mask[:, 48:] = 1.0
        result = engine(Adam()).run(content, style, [3, 3], sizes=[64, 96], mask=mask, margin=8)
        out[what] = {"losses": rows(result),
                     "left_unchanged": float(np.abs(result.image[:, :40] - content[:, :40]).max())}
    elif what == "kit":  # the plugin contract kit on this backend
        from nstcore.testing import TinyVGG, check_extractor, check_loss, check_solver
        from nstcore_meanstd.loss import MeanStdStyleLoss
        from nstcore_wasserstein.loss import GaussianW2StyleLoss

        found = {}
        for cls in (ContentLoss, GramStyleLoss, TotalVariationLoss, MeanStdStyleLoss,
                    GaussianW2StyleLoss):
            found[cls.__name__] = check_loss(cls)
        for cls in (Adam, LBFGS):
            found[cls.__name__] = check_solver(cls)
        check_extractor(TinyVGG())
        out[what] = found
out["tensorflow_imported"] = "tensorflow" in sys.modules
print(json.dumps(out))
