"""The malloc settings of a run that tiles: memory it frees goes back to the system instead of staying
resident."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="glibc's mallopt")

# Frees 400 MiB of 2-MiB blocks below a live block, after a 4-MiB free has raised glibc's dynamic
# mmap threshold (what a tiled step's activations do, at smaller scale); prints what went back.
SCRIPT = """
import ctypes, sys
from nstcore.malloc import free_to_system
print(free_to_system())
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]

def block(size):
    pointer = libc.malloc(size)
    libc.memset(pointer, 1, size)
    return pointer

def resident():
    return int(open("/proc/self/statm").read().split()[1]) * 4096

libc.free(block(4 << 20))
blocks = [block(2 << 20) for _ in range(200)]
live = block(1 << 20)
before = resident()
for pointer in blocks:
    libc.free(pointer)
print((before - resident()) / 2**20)
"""


def _released(env_extra: dict[str, str]) -> tuple[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    result = subprocess.run([sys.executable, "-c", SCRIPT], env={**env, **env_extra},
                            capture_output=True, text=True, check=True)
    applied, released = result.stdout.split()
    return applied, float(released)


def test_freed_tensors_go_back_to_the_system():
    applied, released = _released({})
    assert applied == "True"
    assert released > 350, released


def test_glibc_variables_the_user_set_win():
    applied, released = _released({"MALLOC_ARENA_MAX": "8"})
    assert applied == "False"
    assert released < 50, released  # glibc's dynamic threshold: the heap keeps what was freed
