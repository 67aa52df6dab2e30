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
    progress.update(_step(1, 9.0, 128))  # traces: left out of the rate
    assert progress.eta() is None
    progress.update(_step(2, 0.5, 128))
    # one scale seen: priced by pixels; one 128-px step left at 0.5 s, three 256-px steps at
    # 4 x 0.5 s, and the 256-px scale's first step costs what the 128-px one did over its median
    assert progress.eta() == pytest.approx(0.5 + 3 * 2.0 + 8.5)
    progress.update(_step(3, 0.5, 128))
    progress.update(_step(4, 30.0, 256))  # the new scale's first step: left out again
    progress.update(_step(5, 2.2, 256))
    # two scales seen: a fixed part plus a part per pixel through both medians; 256 px -> 2.2 s
    assert progress.eta() == pytest.approx(2.2)
    lines = out.getvalue().splitlines()
    assert lines[1] == "step 2/6  loss 1  0.50 s/step  ETA 0m15s"
    assert lines[-1].endswith("ETA 0m02s")


def test_eta_fits_a_fixed_part_and_a_part_per_pixel_across_scales():
    """Small scales cost more per pixel (fixed costs per step): with two scales seen, the ETA of
    a larger third one is the straight line through them, not the last one's rate per pixel."""
    progress = Progress(9, stream=io.StringIO(), schedule=[(100, 3, 10_000), (200, 3, 40_000),
                                                            (400, 3, 160_000)])
    for step, (seconds, size) in enumerate([(5, 100), (1.0, 100), (1.0, 100),
                                            (5, 200), (2.5, 200), (2.5, 200)], 1):
        progress.update(_step(step, seconds, size))
    # 1.0 s at 10k px, 2.5 s at 40k px: 0.5 s + 5e-5 s/px; a 160k-px step: 8.5 s; plus the
    # extra first step (4 s over the median at 100 px, 2.5 s at 200 px: 3.25 s on average)
    assert progress.eta() == pytest.approx(3 * 8.5 + 3.25)


def test_the_scale_of_a_step_comes_from_its_size():
    progress = Progress(6, stream=io.StringIO(), schedule=[(64, 3), (128, 3)])
    progress.update(_step(1, 2.0, 64))
    progress.update(_step(2, 2.0, 128))  # the 64-px scale stopped early: a new scale began
    progress.update(_step(3, 1.0, 128))
    assert progress.eta() == pytest.approx(1 * 1.0)  # one 128-px step left, none at 64 px


def test_eta_of_one_scale_is_the_median_step_times_the_steps_left():
    progress = Progress(10, stream=io.StringIO())
    for step, seconds in enumerate([5.0, 1.0, 3.0, 2.0], 1):
        progress.update(_step(step, seconds, 64))
    assert progress.eta() == pytest.approx(2.0 * 6)  # the median after the first step


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
