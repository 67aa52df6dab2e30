"""``nstcore plot``: a run report's losses per step as a picture (matplotlib, an optional extra).

Each weighted term and the total, on a log scale; a dashed line where a coarse-to-fine run moves
to the next size (values at different sizes are not comparable, so the jumps there are expected).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from nstcore.errors import InputError
from nstcore.files import atomic_write, check_new_file

INSTALL_HINT = 'plotting needs matplotlib: pip install "nstcore[plot]"'
SUFFIXES = {".png", ".svg", ".pdf"}


def check_plot_path(path: str | Path, flag: str = "", inputs: tuple = ()) -> Path:
    """Refuse, before any work, a plot target that cannot be written, or a missing matplotlib."""
    import importlib.util

    checked = check_new_file(path, SUFFIXES, what="plot", flag=flag, inputs=inputs)
    if importlib.util.find_spec("matplotlib") is None:
        raise InputError(INSTALL_HINT)
    return checked


def read_losses(path: str | Path) -> tuple[list[dict[str, float]], list[dict[str, Any]]]:
    """The ``losses`` and ``scales`` of a run report, refused in one line when it is not one."""
    path = Path(path)
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a JSON run report ({type(exc).__name__})") from None
    losses = report.get("losses") if isinstance(report, dict) else None
    if not isinstance(losses, list) or not losses or not all(
            isinstance(row, dict) and "step" in row and "total" in row for row in losses):
        raise InputError(f"{path}: has no per-step losses (write one with `nstcore run --report`)")
    return losses, report.get("scales") or []


def plot_losses(losses: list[dict[str, float]], scales: list[dict[str, Any]],
                output: str | Path, title: str = "") -> Path:
    """Draw the losses and write ``output`` (PNG, SVG or PDF, by its suffix) atomically."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    output = check_new_file(output, SUFFIXES, what="plot")
    suffix = output.suffix.lower().lstrip(".")
    steps = [row["step"] for row in losses]
    names = [key for key in losses[0] if key != "step"]
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    for name in names:
        values = [row.get(name, math.nan) for row in losses]
        positive = [v if isinstance(v, (int, float)) and v > 0 and math.isfinite(v) else math.nan
                    for v in values]
        axes.plot(steps, positive, label=name, linewidth=2.2 if name == "total" else 1.2,
                  color="black" if name == "total" else None)
    for scale in scales[1:]:
        axes.axvline(scale["first_step"] - 0.5, color="grey", linestyle="--", linewidth=0.8)
        axes.annotate(f"{scale['size']} px", (scale["first_step"] - 0.5, 0), xycoords=("data", "axes fraction"),
                      xytext=(3, 4), textcoords="offset points", fontsize=8, color="grey")
    axes.set_yscale("log")
    axes.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes.set_xlabel("step")
    axes.set_ylabel("weighted loss")
    axes.set_title(title or "nstcore losses per step")
    axes.legend()
    figure.tight_layout()

    def write(fh: Any) -> None:
        figure.savefig(fh, format=suffix)

    try:
        return atomic_write(output, write)
    finally:
        plt.close(figure)
