"""nstcore against its PyTorch peer, pastiche 1.6.0, timed in the same run on the same machine.

Both run as whole processes with the same images, size, VGG19 layers and Adam, once with a few
steps and once with more; the difference in wall time over the difference in steps is the
per-step time, free of start-up, weight loading and the first step's tracing. Pairs alternate
(peer, nstcore, peer, nstcore...) so drift of a shared machine hits both. pastiche needs torch,
so it runs from its own venv (``make bench-peer`` creates it); it is never a dependency of nstcore.

    python -m nstcore_benchmarks.peer --peer-python .peer-venv/bin/python --size 256
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTENT_LAYERS = ["block5_conv2"]
STYLE_LAYERS = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]


def peer_command(python: str, content: str, style: str, out: str, size: int, steps: int) -> list[str]:
    return [python, "-m", "pastiche", "--device", "cpu", "--optimizer", "adam", "--num-steps", str(steps),
            "--size", str(size), "--content-layers", *CONTENT_LAYERS, "--style-layers", *STYLE_LAYERS,
            "--tv-weight", "30", "--no-verbose", "--content", content, "--styles", style, "--output", out]


def nstcore_command(content: str, style: str, out: str, size: int, steps: int) -> list[str]:
    nstcore = shutil.which("nstcore") or str(Path(sys.executable).with_name("nstcore"))
    return [nstcore, "run", content, style, "-o", out, "--size", str(size), "--scales", "1",
            "--optimizer", "adam", "--steps", str(steps), "-q"]


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(command)}\n{proc.stderr[-2000:]}")
    return seconds


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


#: the CPU flags that decide speed here: native bfloat16 (AVX512-BF16, AMX) or not, AVX-512, AVX2
SPEED_FLAGS = frozenset({"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})


def cpu_flags() -> list[str]:
    """This CPU's :data:`SPEED_FLAGS`, sorted."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return sorted(set(line.split(":", 1)[1].split()) & SPEED_FLAGS)
    except OSError:
        pass
    return []


@dataclass
class Measured:
    """A finished process as a user would time it: exit status, wall seconds, peak resident set
    in KiB (the kernel's figure for that process, from ``wait4``), its output."""

    exit: int
    wall_seconds: float
    peak_rss_kib: int
    stdout: str
    stderr: str


def measured(command: list[str], cwd: str | Path | None = None) -> Measured:
    """Run ``command`` and measure it. Its output goes to temporary files, not pipes, so a
    chatty process cannot block on a full pipe while we wait for it."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(proc.returncode, wall, usage.ru_maxrss, out.read(), err.read())


def write_result(path: str | Path, benchmark: str, rows: list[dict[str, Any]], **fields: Any) -> dict:
    """A result file for ``benchmarks/results`` (what :mod:`nstcore_benchmarks.render` reads):
    the benchmark's name, this CPU, its :data:`SPEED_FLAGS`, today's date, ``fields`` and the
    rows; written atomically. Returns what it wrote."""
    from nstcore.files import atomic_write_bytes

    result = {"benchmark": benchmark, "cpu": cpu_name(), "cpu_flags": cpu_flags(),
              "date": time.strftime("%Y-%m-%d"), **fields, "rows": rows}
    atomic_write_bytes(Path(path), (json.dumps(result, indent=1, default=float) + "\n").encode())
    return result


def main(argv: list[str] | None = None) -> int:
    from nstcore.run import asset

    parser = argparse.ArgumentParser(prog="nstcore_benchmarks.peer", description=__doc__.split("\n")[0])
    parser.add_argument("--peer-python", required=True, help="python of a venv with torch and pastiche")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--short", type=int, default=5)
    parser.add_argument("--long", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--content", default=str(asset("astronaut.png")))
    parser.add_argument("--style", default=str(asset("starry_night.jpg")))
    parser.add_argument("--json", help="write the measurements here")
    args = parser.parse_args(argv)
    if args.long <= args.short:
        parser.error("--long must be larger than --short")
    per_step: dict[str, list[float]] = {"pastiche": [], "nstcore": []}
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "out.png")
        makers = {"pastiche": lambda n: peer_command(args.peer_python, args.content, args.style, out,
                                                      args.size, n),
                  "nstcore": lambda n: nstcore_command(args.content, args.style, out, args.size, n)}
        for round_ in range(args.repeat):
            for name, make in makers.items():
                short, long = timed(make(args.short)), timed(make(args.long))
                per_step[name].append((long - short) / (args.long - args.short))
                print(f"round {round_ + 1} {name}: {args.short} steps {short:.1f} s, {args.long} steps"
                      f" {long:.1f} s -> {per_step[name][-1]:.3f} s/step", flush=True)
    peer, ours = (statistics.median(per_step[k]) for k in ("pastiche", "nstcore"))
    print(f"\n{cpu_name()}, {args.size} px, Adam: pastiche {peer:.3f} s/step, nstcore {ours:.3f} s/step;"
          f" nstcore / pastiche = {ours / peer:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu_name(), "size": args.size, "short": args.short,
                                               "long": args.long, "per_step": per_step,
                                               "ratio": ours / peer}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
