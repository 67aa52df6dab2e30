"""The C heap (glibc's malloc) under a memory-bound run: give freed memory back to the system.

TensorFlow's CPU allocator takes tensors from malloc. glibc raises its mmap threshold each time
a large block is freed (up to 32 MiB), so later tensors of that size come from the heap arenas,
and memory freed there stays resident while anything above it is alive. A tiled step allocates
and frees a tile's activations again and again, so resident memory creeps well past what is
alive, and a pyramid's coarser scales leave their buffers behind for the next one.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
from typing import Any

#: ``mallopt`` parameters (glibc's malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

#: Blocks from this size up get their own mapping (glibc's initial threshold, held fixed).
MMAP_THRESHOLD = 128 * 1024
ARENA_MAX = 2

#: glibc's own environment variables for the same settings: a user who sets one keeps glibc's
#: behaviour as they configured it.
GLIBC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_ARENA_MAX")

_applied: bool | None = None


def _libc() -> Any:
    """glibc, or None elsewhere (macOS, Windows, musl)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def free_to_system() -> bool:
    """From now on, give blocks of 128 KiB and up back to the system as soon as they are freed
    (a fixed mmap threshold) and keep two heap arenas instead of eight per core.

    For runs that tile, where memory is the limit: measured on a 2-core AMD EPYC (glibc 2.36),
    one 1024-px step in 256-px tiles peaked at 1.92 GiB with glibc's defaults and 1.55 GiB
    with these, and took longer (fresh pages for every tensor), so a process that never tiles
    keeps glibc's defaults. Applied once per process and kept: once the threshold is fixed glibc
    has no way back to its dynamic one, so after one tiled job every later job of the same
    process (a batch, a Python session) runs with these settings too. Returns whether the
    settings are in effect: False off glibc, or when the user set glibc's variables
    (:data:`GLIBC_ENV`) themselves.
    """
    global _applied
    if _applied is None:
        libc = _libc()
        if libc is None or any(name in os.environ for name in GLIBC_ENV):
            _applied = False
        else:
            libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            _applied = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
                libc.mallopt(M_ARENA_MAX, ARENA_MAX))
    return _applied


def release_freed_memory() -> None:
    """Collect garbage and hand the heap's free pages back to the system (``malloc_trim``;
    elsewhere only the collection). Between the scales of a pyramid the last scale's buffers
    are free but stay resident, where they would add to the next, larger scale's peak."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
