"""A test plugin that kills its own process halfway through the Nth run (a lost worker).

``NSTCORE_TEST_KILL_COUNTER`` names a file counting the runs started (across processes);
``NSTCORE_TEST_KILL_AT`` is the run to kill, at its first step, with SIGKILL (no clean-up).
"""
import os
import signal
from pathlib import Path

import nstcore


def _counter() -> Path | None:
    name = os.environ.get("NSTCORE_TEST_KILL_COUNTER")
    return Path(name) if name else None


@nstcore.hookimpl
def on_run_start(settings):
    counter = _counter()
    if counter is not None:
        count = int(counter.read_text() or 0) if counter.exists() else 0
        counter.write_text(str(count + 1))


@nstcore.hookimpl
def on_step(step):
    counter = _counter()
    if counter is not None and step.step == 1 and counter.read_text() == os.environ.get("NSTCORE_TEST_KILL_AT"):
        os.kill(os.getpid(), signal.SIGKILL)
