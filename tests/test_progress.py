"""What a run prints while it runs: the progress line (its ETA prices the steps left at their own
scale's size) and no warnings about retracing that the pyramid plans."""
from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from nstcore.progress import Progress


def _step(step, seconds, size, total=1.0):
    return SimpleNamespace(step=step, total=total, seconds=seconds, size=size)


def test_eta_prices_later_scales_by_their_pixels():
    out = io.StringIO()
    progress = Progress(6, stream=out, schedule=[(128, 3), (256, 3)])
    progress.update(_step(1, 9.0, 128))  # traces: left out
    assert progress.eta(1) is None
    progress.update(_step(2, 0.5, 128))
    # one 128-px step left at 0.5 s, then three 256-px steps at 4 x 0.5 s
    assert progress.eta(2) == pytest.approx(0.5 + 3 * 2.0)
    progress.update(_step(3, 0.5, 128))
    progress.update(_step(4, 30.0, 256))  # the new scale's first step: left out again
    progress.update(_step(5, 2.2, 256))
    assert progress.eta(5) == pytest.approx(2.2)
    lines = out.getvalue().splitlines()
    assert lines[1] == "step 2/6  loss 1  0.50 s/step  ETA 0m06s"
    assert lines[-1].endswith("ETA 0m02s")


def test_eta_of_one_scale_is_the_median_step_times_the_steps_left():
    progress = Progress(10, stream=io.StringIO())
    for step, seconds in enumerate([5.0, 1.0, 3.0, 2.0], 1):
        progress.update(_step(step, seconds, 64))
    assert progress.eta(4) == pytest.approx(2.0 * 6)


def test_planned_retracing_warning_is_not_shown_but_other_warnings_are():
    import logging

    from nstcore.tfload import load_tensorflow

    load_tensorflow()
    import tensorflow as tf

    seen = io.StringIO()
    handler = logging.StreamHandler(seen)
    tf.get_logger().addHandler(handler)
    try:
        tf.get_logger().warning("6 out of the last 11 calls to <function f> triggered tf.function"
                                " retracing. Tracing is expensive ...")
        tf.get_logger().warning("a warning the user should see")
    finally:
        tf.get_logger().removeHandler(handler)
    assert seen.getvalue() == "a warning the user should see\n"
