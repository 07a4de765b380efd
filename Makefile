# Two entry points for a fresh machine (see README.md):
#   make audit   -> set up .venv and run `fairleak audit` on the bundled Adult data
#   make test    -> set up .venv and run the test suite
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup audit test lint bench clean

setup: $(VENV)/.installed

# torch is installed first and explicitly as the CPU build 2.13.0, so that no later
# resolution step can pull a multi-GB CUDA build from the registry.
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

audit: setup
	$(BIN)/fairleak audit

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .

bench: setup
	cd benchmarks && ../$(BIN)/python run_all.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
