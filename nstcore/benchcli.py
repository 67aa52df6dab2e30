"""``nstcore bench``: run the pytest-benchmark harness in a subprocess and print a friendly table."""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from nstcore import bench
from nstcore.errors import NstError
from nstcore.files import atomic_write


def harness_dir() -> Path:
    spec = importlib.util.find_spec("nstcore_benchmarks")
    if spec is None or not spec.submodule_search_locations:
        raise NstError("the benchmark harness (nstcore_benchmarks) is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def _write_baseline(path: str, baseline: dict) -> None:
    text = json.dumps(baseline, indent=2, sort_keys=True) + "\n"
    atomic_write(Path(path), lambda fh: fh.write(text.encode()))
    print(f"baseline written: {path}")


def _baseline(runs: list, note: str = "") -> dict:
    try:
        return bench.baseline_from_runs(runs, note)
    except bench.BaselineError as exc:
        raise NstError(f"cannot save a baseline: {exc}") from None


def print_heavy_rows(data: dict) -> None:
    """The time-to-quality and memory tables, formatted by the harness that measured them."""
    quality = bench.rows_from_json(data, ("quality",))
    memory = bench.rows_from_json(data, ("memory",))
    if quality:
        from nstcore_benchmarks.quality import format_rows

        print(f"\ntime to quality ({quality[0]['cpu']}):\n" + format_rows(quality))
    if memory:
        from nstcore_benchmarks.memory import format_rows as memory_rows

        print(f"\npeak memory and tiling overhead ({memory[0]['cpu']}):\n" + memory_rows(memory))


def run_backends(args: argparse.Namespace) -> int:
    """``--backends``: benchmarks/backends.py once per backend, one table."""
    from nstcore import backends

    for name in args.backends:
        backends.requested(name)  # an unknown name fails before anything is timed
    sizes = args.sizes or ["64", "128"]
    rows: list[dict] = []
    for name in args.backends:
        print(f"nstcore: timing the {name} backend at {','.join(sizes)} px on"
              f" {', '.join(args.devices)} ...", file=sys.stderr)
        cmd = [sys.executable, "-m", "nstcore_benchmarks.backends", "--backend", name,
               "--devices", ",".join(args.devices), "--sizes", ",".join(sizes),
               "--precision", ",".join(args.precision), "--steps", str(args.rounds)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
            print(tail, file=sys.stderr)
            raise NstError(f"the {name} backend's benchmark failed (exit {proc.returncode})")
        rows += json.loads(proc.stdout.strip().splitlines()[-1])
    from nstcore_benchmarks.peer import cpu_flags, cpu_name, write_result

    print(f"{cpu_name()} ({', '.join(cpu_flags())}):")
    print(format_backend_rows(rows))
    write_result(args.json, "backends", rows, steps=args.rounds)
    print(f"\nJSON: {args.json}")
    return 0


def format_backend_rows(rows: list[dict]) -> str:
    """One table: each backend's step against the tutorial's (same device and size)."""
    from nstcore.console import format_table

    reference = {(r["device"], r["size"]): r["median_step_seconds"]
                 for r in rows if r.get("what") == "tutorial"}
    lines = []
    for r in rows:
        if "skipped" in r:
            lines.append((r["backend"], r["device"], "-", "-", "-", "-", "-", "-", "-", "-",
                          f"skipped: {r['skipped']}"))
            continue
        ref = reference.get((r["device"], r["size"]))
        device_peak = r.get("device_peak_gib")
        lines.append((r["backend"] + (" (tutorial)" if r["what"] == "tutorial" else ""),
                       r["device"], str(r["size"]), r["precision"],
                       f"{r['median_step_seconds']:.3f}",
                       f"{r['median_step_seconds'] / ref:.2f}" if ref else "-",
                       f"{r['share_of_matmul']:.2f}", f"{r['first_step_seconds']:.2f}",
                       f"{r['host_peak_rss_gib']:.2f}",
                       f"{device_peak:.2f}" if device_peak is not None else "-", r["device_name"]))
    return format_table(("BACKEND", "DEVICE", "PX", "PRECISION", "S/STEP", "X TUTORIAL",
                         "OF MATMUL", "FIRST S", "HOST PEAK GiB", "DEVICE PEAK GiB", "ON"), lines)


def run_bench(args: argparse.Namespace) -> int:
    if args.backends:
        return run_backends(args)
    if args.baseline_from:
        if not args.save_baseline:
            raise NstError("--baseline-from needs --save-baseline FILE")
        missing = [p for p in args.baseline_from if not Path(p).is_file()]
        if missing:
            raise NstError(f"--baseline-from {missing[0]}: no such file")
        _write_baseline(args.save_baseline,
                        _baseline([bench.load_json(p) for p in args.baseline_from]))
        return 0
    json_path = Path(args.json)
    if args.compare and not Path(args.compare).is_file():
        raise NstError(f"--compare {args.compare}: no such file")
    heavy = ["--quality-sizes", ",".join(args.quality), "--memory-sizes", ",".join(args.memory),
             "--memory-tiles", ",".join(args.memory_tiles)]
    sizes = args.sizes if args.sizes is not None else [] if args.quality or args.memory else ["64", "128"]
    cmd = [sys.executable, "-m", "pytest", str(harness_dir()), "-q", "-p", "no:cacheprovider",
           "--rootdir", str(harness_dir()), "--benchmark-json", str(json_path), *heavy,
           "--bench-sizes", ",".join(sizes), "--bench-solvers", ",".join(args.solvers),
           "--bench-devices", ",".join(args.devices), "--bench-compile", ",".join(args.compile),
           "--bench-precision", ",".join(args.precision), "--bench-rounds", str(args.rounds),
           "--bench-min-time", str(args.min_time)] + (["--bench-run-loop"] if args.run_loop else [])
    print(f"nstcore: timing {len(sizes)} size(s) x {len(args.solvers)} solver(s) x"
          f" {len(args.compile)} compilation(s) on {', '.join(args.devices)}"
          + (f"; time to quality at {','.join(args.quality)} px" if args.quality else "")
          + (f"; memory at {','.join(args.memory)} px" if args.memory else "") + " ...", file=sys.stderr)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not json_path.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        print(tail, file=sys.stderr)
        raise NstError(f"the benchmark run failed (pytest exit {proc.returncode})")
    data = bench.load_json(json_path)
    rows = bench.rows_from_json(data)
    unavailable = {}
    for line in proc.stdout.splitlines():
        if "SKIPPED" in line and "gpu:" in line:
            unavailable["gpu"] = line.split("gpu:", 1)[1].strip()
    if rows:
        print(bench.format_table(rows, unavailable))
    print_heavy_rows(data)
    print(f"\npytest-benchmark JSON: {json_path}")
    if args.save_baseline:
        _write_baseline(args.save_baseline, _baseline([data], "one run"))
    if args.compare:
        saved = bench.load_json(args.compare)
        baseline = saved if "rows" in saved else bench.baseline_from_rows(bench.rows_from_json(saved))
        threshold = (args.fail_above if args.fail_above is not None else float("inf")) / 100.0
        report, failures = bench.compare(rows, baseline, threshold)
        print(f"\nagainst {args.compare} ({bench.GATED_FIGURE}; higher is slower):")
        for line in report:
            print("  " + line)
        if failures:
            print(f"nstcore: error: {len(failures)} gated figure(s) failed (slower by more than"
                  f" {args.fail_above or 0:g} %, missing, or too noisy to gate)", file=sys.stderr)
            return 1
    return 0
