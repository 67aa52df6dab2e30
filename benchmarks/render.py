"""Markdown tables from the result files in ``benchmarks/results``: the docs' only source of figures.

A docs page asks for a table with a comment on a line of its own::

    <!-- results: 2026-11-30-amd-epyc-avx512bf16-defaults-512.json view=cost -->

and the docs build (``docs/hooks.py``) replaces it with the table this module renders from that
file, headed by the machine, its CPU flags and the date the file records. Units are seconds and
GiB throughout. A missing file or an unknown view fails the build (``mkdocs build --strict``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from nstcore_benchmarks.edges import LIMIT, SIDES
from nstcore_benchmarks.peer import SPEED_FLAGS

RESULTS = Path(__file__).with_name("results")


class RenderError(ValueError):
    """A results comment that names no file, or a view the file's benchmark has not."""


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}" if value < 10 else f"{value:.0f}"


def _machine(data: dict[str, Any]) -> str:
    flags = data.get("cpu_flags")
    flags = f" ({', '.join(flags)})" if flags else ""
    return f"*Measured on {data.get('cpu', 'an unnamed CPU')}{flags}, {data.get('date', 'undated')}.*"


# -- defaults (benchmarks/defaults.py) -----------------------------------------------------------
def _defaults_cost(data: dict[str, Any]) -> str:
    rows, losses = [], any("final_losses" in row for row in data["rows"])
    for row in data["rows"]:
        if row.get("exit"):
            rows.append([f"`{row['command']}`", f"failed: {row.get('error', '')}", "", "", ""]
                        + [""] * losses)
            continue
        cells = [f"`{row['command']}`", _seconds(row["wall_seconds"]),
                 _seconds(row["tutorial_step_seconds"]), f"{row['cost_in_tutorial_steps']:.0f}",
                 f"{row['peak_rss_gib']:.2f}"]
        if losses:
            final = row.get("final_losses", {})
            cells.append(" / ".join(f"{final[k]:.3g}" if k in final else "-"
                                    for k in ("total", "gram", "content")))
        rows.append(cells)
    return _table(["command (whole process)", "wall s", "tutorial step s", "cost in tutorial steps",
                   "peak RSS GiB"] + (["loss at the end: total / style / content"] if losses else []),
                  rows)


def _defaults_scales(data: dict[str, Any]) -> str:
    rows = []
    for row in data["rows"]:
        for scale in row.get("scales", []):
            rows.append([f"{row['content']} x {row['style']}", scale["size"], scale["steps"],
                         _seconds(scale.get("setup_seconds")), _seconds(scale["first_step_seconds"]),
                         _seconds(scale["median_step_seconds"]),
                         f"{scale['first_step_seconds'] / scale['median_step_seconds']:.2f}"])
    return _table(["pair", "scale px", "steps", "set-up s", "first step s", "median step s",
                   "first / median"], rows)


FLIPPED = {"v": "upside down", "h": "mirrored", "vh": "upside down and mirrored"}
#: how a row of the surround benchmark started its margin
MARGIN_STARTS = {"mirror": "mirrored margin", "photo": "margin from the photo around it"}


def _noise(row: dict[str, Any]) -> str:
    """A surround row's start noise, as its label shows it (rows from before it had none)."""
    return f" + noise {row['start_noise']:g}" if row.get("start_noise") else ""


def _defaults_edges(data: dict[str, Any]) -> str:
    rows, ranked = [], any("edge_rank" in row for row in data["rows"])
    for row in data["rows"]:
        if "extra_edge_steps" not in row:
            continue
        edges, noise = row["extra_edge_steps"], row["interior_noise"]
        flipped = f" (run {FLIPPED[row['flip']]})" if row.get("flip") in FLIPPED else ""
        start = row.get("margin_start")
        start = f", {MARGIN_STARTS[start]}{_noise(row)}" if start in MARGIN_STARTS else ""
        cells = [f"{row['content']} x {row['style']}{flipped}{start}",
                 *(f"{edges[side]:+.1f}" for side in SIDES),
                 f"{max(edges.values()):.1f}", f"{noise['median']:+.1f} / {noise['p90']:.1f}",
                 f"{noise['above_3']:.0%}"]
        if ranked:
            rank = row.get("edge_rank", {})
            cells.append(" / ".join(f"{rank[side]:.2f}" if side in rank else "-" for side in SIDES))
        rows.append(cells)
    header = ["pair", "top", "left", "bottom", "right", "largest", "inside: median / 90th pct",
              "inside above 3"]
    table = _table(header + (["rank among inside lines (t / l / b / r)"] if ranked else []), rows)
    starts = list(dict.fromkeys(row["margin_start"] for row in data["rows"]
                                if "margin_start" in row))
    if not starts:
        return table + "\n\n" + _edges_summary(data["rows"], ranked)
    summaries = []  # the surround benchmark: each start counted on its own
    for start in starts:
        text = _edges_summary([row for row in data["rows"] if row.get("margin_start") == start],
                              ranked)
        label = MARGIN_STARTS.get(start, start).capitalize() + _noise(
            next(row for row in data["rows"] if row.get("margin_start") == start))
        summaries.append(f"{label}: {text[0].lower()}{text[1:]}")
    return table + "\n\n" + " ".join(summaries)


#: a side whose figure is above this share of the lines inside its picture is counted as a band
BAND_RANK = 0.99


def _edges_summary(rows: list[dict[str, Any]], ranked: bool) -> str:
    """How many sides exceed the limit, against how many texture alone would: each side counted as
    likely to exceed it as a line inside its own picture (the "inside above 3" share)."""
    measured = [row for row in rows if "extra_edge_steps" in row]
    sides = [value for row in measured for value in row["extra_edge_steps"].values()]
    above = sum(value > LIMIT for value in sides)
    expected = sum(len(row["extra_edge_steps"]) * row["interior_noise"]["above_3"] for row in measured)
    text = (f"Sides above {LIMIT}/255: {above} of {len(sides)}; texture alone would put about"
            f" {expected:.1f} there (each side as likely to exceed {LIMIT}/255 as a line inside its"
            " picture).")
    if ranked:
        bands = sum(rank >= BAND_RANK for row in measured for rank in row.get("edge_rank", {}).values())
        text += f" Sides above {BAND_RANK:.0%} of the lines inside their picture (bands): {bands}."
    return text


# -- time to quality (benchmarks/quality.py) -----------------------------------------------------
def _quality(data: dict[str, Any]) -> str:
    rows = []
    for row in data["rows"]:
        reached = row.get("reached")
        end = row.get("defaults_end")
        rows.append([row["size"], row["variant"], row.get("margin", 0),
                     f"{row['target']:.4g} ({row['reference_steps']})",
                     _seconds(row["tutorial_seconds"]),
                     _seconds(reached["seconds"]) if reached else
                     f"not reached (best {row['best_final_size_value']:.4g})",
                     f"{row['ratio']:.3f}" if reached else f"> {row['ratio']:.3f}",
                     f"{_seconds(end['seconds'])} / {end['value']:.4g}" if end else "-"])
    return _table(["size", "variant", "margin", "target (tutorial steps)", "tutorial s",
                   "nstcore s to target", "ratio", "defaults end: s / value"], rows)


# -- pytest-benchmark files (nstcore bench --json) -----------------------------------------------
def _bench(data: dict[str, Any]) -> str:
    rows = []
    for bench in data.get("benchmarks", []):
        info = bench.get("extra_info", {})
        if info.get("impl") not in ("nstcore", "tutorial"):
            continue
        per_step = info.get("step_median_seconds") or bench["stats"]["median"]
        rows.append([info.get("impl"), info.get("solver"), info.get("size"), info.get("device"),
                     info.get("compilation"), info.get("precision"), _seconds(per_step),
                     f"{info.get('evaluations_per_step', 1):.2g}",
                     f"{info['fraction_of_matmul']:.2f}" if info.get("fraction_of_matmul") else "-",
                     f"{info['peak_memory_mb'] / 1024:.2f}" if info.get("peak_memory_mb") else "-"])
    return _table(["code", "solver", "size", "device", "compile", "precision", "s/step",
                   "evaluations/step", "of matmul", "peak GiB"], rows)


# -- backends (nstcore bench --backends, benchmarks/backends.py) ---------------------------------
def _backends(data: dict[str, Any]) -> str:
    reference = {(r["device"], r["size"]): r["median_step_seconds"]
                 for r in data["rows"] if r.get("what") == "tutorial"}
    rows = []
    for r in data["rows"]:
        if "skipped" in r:
            rows.append([r["backend"], r["device"], "-", "-", f"skipped: {r['skipped']}", "", "", "",
                         "", ""])
            continue
        ref = reference.get((r["device"], r["size"]))
        peak = r.get("device_peak_gib")
        rows.append([f"{r['backend']} {r['version']}" + (" (the tutorial's code)" if r["what"] == "tutorial" else ""),
                     r["device_name"], r["size"], r["precision"], _seconds(r["median_step_seconds"]),
                     f"{r['median_step_seconds'] / ref:.2f}" if ref else "-",
                     f"{r['share_of_matmul']:.2f}", _seconds(r["first_step_seconds"]),
                     f"{r['host_peak_rss_gib']:.2f}", "-" if peak is None else f"{peak:.2f}"])
    return _table(["backend", "device", "px", "precision", "s/step", "x tutorial step",
                   "of its matmul", "first step s", "host peak GiB", "device peak GiB"], rows)


# -- schedules (the defaults benchmark, one pair, several --scales/--scale-steps) ---------------
def _schedules(data: dict[str, Any]) -> str:
    rows = [[", ".join(map(str, row["sizes"])), ", ".join(map(str, row["steps"])),
             _seconds(row["wall_seconds"]), f"{row['cost_in_tutorial_steps']:.1f}",
             f"{row['final_total']:.3g}", f"{row['final_gram']:.3g}"] for row in data["rows"]]
    return _table(["scales px", "steps", "wall s", "cost in tutorial steps", "final loss",
                   "final style loss"], rows)


# -- the gallery's pictures (docs/gallery.md) ----------------------------------------------------
def _gallery(data: dict[str, Any]) -> str:
    rows = [[f"`{row['picture']}`", f"`{row['command']}`", _seconds(row["wall_seconds"]),
             f"{row['peak_rss_gib']:.2f}"] for row in data["rows"]]
    return _table(["picture", "command (whole process)", "wall s", "peak RSS GiB"], rows)


VIEWS: dict[str, dict[str, Callable[[dict[str, Any]], str]]] = {
    "gallery": {"table": _gallery},
    "schedules": {"table": _schedules},
    "defaults": {"cost": _defaults_cost, "scales": _defaults_scales, "edges": _defaults_edges},
    "surround": {"edges": _defaults_edges},
    "quality": {"table": _quality},
    "bench": {"table": _bench},
    "backends": {"table": _backends},
}


def kind(data: dict[str, Any]) -> str:
    """The benchmark a result file holds (pytest-benchmark files say it in their own way)."""
    if "benchmarks" in data and "machine_info" in data:
        return "bench"
    return str(data.get("benchmark", ""))


def render(name: str, view: str | None = None, folder: Path = RESULTS) -> str:
    """The table ``view`` of result file ``name`` (in ``folder``), headed by where it ran."""
    path = folder / name
    if not path.is_file() or path.parent.resolve() != folder.resolve():
        raise RenderError(f"no result file {name} in {folder}")
    data = json.loads(path.read_text())
    views = VIEWS.get(kind(data))
    if views is None:
        raise RenderError(f"{name}: unknown benchmark {kind(data)!r}")
    view = view or next(iter(views))
    if view not in views:
        raise RenderError(f"{name}: no view {view!r} (views: {', '.join(views)})")
    if kind(data) == "bench":
        machine = data["machine_info"]
        cpu = machine.get("cpu", {})
        data = {**data, "cpu": cpu.get("brand_raw") or machine.get("processor"),
                "cpu_flags": sorted(set(cpu.get("flags", [])) & SPEED_FLAGS),
                "date": str(data.get("datetime", ""))[:10]}
    note = f" {data['note']}" if isinstance(data.get("note"), str) else ""
    return f"{_machine(data)} Source: `benchmarks/results/{name}`.{note}\n\n{views[view](data)}\n"
