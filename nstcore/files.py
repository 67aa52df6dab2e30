"""Writing files safely: output paths checked before any work, then atomic replacement.

Nothing the user had is lost: a target is written to a temporary file in the same folder and
renamed over the old one only when complete, so a killed process leaves the old file or none.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Collection

from nstcore.errors import InputError


def folder_writable(folder: Path) -> bool:
    """Try it: permission bits say little to root or on read-only mounts."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".nstcore-probe-")
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def check_new_file(path: str | os.PathLike, suffixes: Collection[str], *, what: str,
                   flag: str = "", inputs: tuple[str | os.PathLike, ...] = ()) -> Path:
    """Refuse a target that has the wrong suffix, cannot be written, or is one of ``inputs``."""
    path = Path(path)
    label = f"{flag} {path}".strip()
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise InputError(f"{label}: unsupported {what} format '{suffix or '(none)'}'"
                         f" (use one of {', '.join(sorted(suffixes))})")
    if path.is_dir():
        raise InputError(f"{label}: is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{label}: folder {parent} does not exist")
    if not folder_writable(parent):
        raise InputError(f"{label}: folder {parent} is not writable")
    for source in map(Path, inputs):
        if path.resolve() == source.resolve() or (
                source.exists() and path.exists() and os.path.samefile(source, path)):
            raise InputError(f"{label}: is the same file as input {source}")
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[Any], Any]) -> Path:
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda fh: fh.write(data))
