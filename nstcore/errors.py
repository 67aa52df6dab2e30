"""Errors a user can act on.

The CLI prints any :class:`NstError` as one line (``nstcore: error: ...``) and exits non-zero;
anything else is a bug and keeps its traceback.
"""


class NstError(Exception):
    """A problem with the user's input or environment, described in one actionable line."""

    exit_code = 2


class InputError(NstError):
    """An input file, flag or output path is unusable."""


class WeightsError(NstError):
    """Model weights are missing, corrupt or unsafe."""


class UnsafePickleError(WeightsError):
    """A weights file tried to load a Python object outside the allow-list."""


class PluginError(NstError):
    """A plugin failed to load, register or run, or two plugins claim the same name."""


class ResourceError(NstError):
    """The requested work does not fit the machine (memory, device)."""


def one_line(exc: BaseException) -> str:
    """An exception's message as one line, without the trace TensorFlow puts in front of errors
    raised while it traces a function ("in user code: File ..."): the real message is its last
    line."""
    text = str(exc).strip()
    if text.startswith("in user code:"):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        name, colon, rest = lines[-1].partition(": ")
        text = rest if colon and name.rsplit(".", 1)[-1] == type(exc).__name__ else lines[-1]
    return " ".join(text.split())
