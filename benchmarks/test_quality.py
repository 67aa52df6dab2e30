"""pytest-benchmark rows for the time-to-quality and memory benchmarks (opt-in: heavy).

``--quality-sizes 256,512`` times nstcore's defaults (and other variants) to the objective value
1000 tutorial Adam steps reach (``quality.py``); ``--memory-sizes 1024,2048`` measures peak RSS
and step time of one final-size run per ``--memory-tiles`` value (``memory.py``). Without them,
no rows are collected, so ``make bench-ci`` does not run them. ``nstcore bench --quality ...
--memory ...`` passes them on.
"""
from __future__ import annotations

import pytest

from .conftest import MEMORY, QUALITY, _csv


def pytest_generate_tests(metafunc):
    opt = metafunc.config.getoption
    if "quality_case" in metafunc.fixturenames:
        cases = [(int(size), variant) for size in _csv(opt("--quality-sizes"))
                 for variant in _csv(opt("--quality-variants"))]
        metafunc.parametrize("quality_case", cases, ids=[f"{s}-{v}" for s, v in cases])
    if "memory_case" in metafunc.fixturenames:
        cases = [(int(size), tile) for size in _csv(opt("--memory-sizes"))
                 for tile in _csv(opt("--memory-tiles"))]
        metafunc.parametrize("memory_case", cases, ids=[f"{s}-tile-{t}" for s, t in cases])


_REFERENCES: dict[tuple[int, int], tuple] = {}


def _reference(size: int, margin: int, config) -> tuple:
    """The judge of the objective with ``margin`` at ``size`` and its reference, once each."""
    from nstcore_benchmarks import quality

    if (size, margin) not in _REFERENCES:
        tutorial = quality.Tutorial(size)
        ref = quality.reference(size, config.getoption("--quality-reference-steps"),
                                config.getoption("--quality-timing-steps"), tutorial, margin,
                                use_saved=not config.getoption("--quality-fresh"))
        _REFERENCES[(size, margin)] = (quality.Judge(size, margin), ref)
    return _REFERENCES[(size, margin)]


def test_time_to_quality(benchmark, quality_case, request):
    from nstcore.settings import Settings
    from nstcore_benchmarks import quality

    size, variant = quality_case
    name, overrides = quality.parse_variant(variant)
    judge, ref = _reference(size, Settings(size=size, **overrides).margin, request.config)
    cap = request.config.getoption("--quality-cap")
    got = benchmark.pedantic(quality.time_to_target,
                             args=(size, ref["target"], overrides, cap * ref["tutorial_seconds"], judge),
                             rounds=1, iterations=1, warmup_rounds=0)
    row = quality.row(name, ref, cap, got)
    benchmark.extra_info.update(row)
    QUALITY.append(row)


def test_peak_memory(benchmark, memory_case, request):
    from nstcore_benchmarks import memory

    size, tile = memory_case
    row = benchmark.pedantic(memory.run_once, args=(size, tile, request.config.getoption("--memory-steps")),
                             rounds=1, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update(row)
    MEMORY.append(row)
    if "refused" in row and tile != "off":
        pytest.fail(f"nstcore run --size {size} --tile {tile} failed: {row['refused']}")
