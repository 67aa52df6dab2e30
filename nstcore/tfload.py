"""Import TensorFlow without its native start-up noise.

The CUDA build prints "Could not find cuda drivers" and a cuInit error on machines without a GPU,
before absl logging starts, so ``TF_CPP_MIN_LOG_LEVEL`` cannot silence them. We point file
descriptor 2 at a temporary file while TensorFlow loads and initialises its devices, and replay
what it wrote if loading fails, so real errors are never hidden.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from typing import Iterator

_loaded = False


VERBOSE_ENV = "NSTCORE_VERBOSE"  # set by `nstcore -v`: show TensorFlow's own messages


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[None]:
    if os.environ.get(VERBOSE_ENV, "") not in ("", "0"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class _PlannedRetracing(logging.Filter):
    """Drops TensorFlow's "N out of the last M calls ... triggered tf.function retracing" warning:
    every scale of a pyramid and every batch job of a new size traces its step anew, by design
    (one trace per shape), and the warning's advice does not apply."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def load_tensorflow() -> None:
    """Import TensorFlow and list devices once, quietly; later imports are free."""
    global _loaded
    if _loaded:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_captured():
        import tensorflow as tf

        tf.config.list_logical_devices()
    if os.environ.get(VERBOSE_ENV, "") in ("", "0"):
        tf.get_logger().addFilter(_PlannedRetracing())
    _loaded = True
