# Course tasks. `make demo` and `make test` create the environment on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The offline copy of the Jena data on the course build machines; unused when absent.
export JENA_DATA_MIRROR ?= $(abspath ../shared/jena_data)

.PHONY: setup demo test release bench clean

setup: $(VENV)/.installed

# Re-runs only when the pinned requirements or the package metadata change.
$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

demo: setup
	$(BIN)/jenalab demo

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/bench_pipeline.py
	$(BIN)/python bench/bench_notebook.py
	$(BIN)/python bench/bench_grading.py

clean:
	rm -rf $(VENV)

release: setup
	$(BIN)/jenalab release
