# Course tasks. `make demo` and `make test` create what they need on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WORKER_VENV := .venv-worker
STUDENT_VENV := .venv-student
# The offline copy of the Jena data on the course build machines; unused when absent.
export JENA_DATA_MIRROR ?= $(abspath ../shared/jena_data)

.PHONY: setup sandbox-tools browser-tools demo test release bench clean

setup: $(VENV)/.installed sandbox-tools

# Re-runs only when the pinned requirements or the package metadata change.
$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# A grading worker as a cluster image has it: this project installed normally, not from the clone
# (the cluster tests start a Dask worker from it).
$(WORKER_VENV)/.installed: requirements.lock pyproject.toml $(shell find jenalab grader_tests source/lstm_jena/jena_weather -name '*.py' -o -name '*.json' -o -name '*.j2')
	test -x $(WORKER_VENV)/bin/python || $(PYTHON) -m venv $(WORKER_VENV)
	$(WORKER_VENV)/bin/python -m pip install --quiet --upgrade "pip>=24"
	$(WORKER_VENV)/bin/python -m pip install --quiet -r requirements.lock
	rm -rf build  # setuptools' leftovers would bring modules that no longer exist into the install
	$(WORKER_VENV)/bin/python -m pip install --quiet --no-deps --force-reinstall .
	touch $@

# A student's environment: only what the release's requirements.txt asks for (and a kernel).
$(STUDENT_VENV)/.installed: source/lstm_jena/requirements.txt requirements.lock
	test -x $(STUDENT_VENV)/bin/python || $(PYTHON) -m venv $(STUDENT_VENV)
	$(STUDENT_VENV)/bin/python -m pip install --quiet --upgrade "pip>=24"
	$(STUDENT_VENV)/bin/python -m pip install --quiet -r source/lstm_jena/requirements.txt ipykernel -c requirements.lock
	touch $@

# System packages from the distribution (root with apt only; elsewhere a note says what to install):
# bubblewrap isolates the grading kernel's filesystem, Chromium and its driver run the browser tests.
sandbox-tools:
	@$(call system_packages,bwrap,bubblewrap)

browser-tools:
	@$(call system_packages,chromium chromedriver,chromium chromium-driver)

define system_packages
	missing=""; for c in $(1); do command -v $$c >/dev/null || missing="$$missing $$c"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y -q $(2) >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q $(2) >/dev/null; }; \
	else echo "Not installed:$$missing. Install the packages $(2) with your system's package manager."; fi
endef

demo: setup
	$(BIN)/jenalab demo

test: setup browser-tools $(WORKER_VENV)/.installed $(STUDENT_VENV)/.installed
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/bench_pipeline.py
	$(BIN)/python bench/bench_notebook.py
	$(BIN)/python bench/bench_grading.py

clean:
	rm -rf $(VENV) $(WORKER_VENV) $(STUDENT_VENV)

release: setup
	$(BIN)/jenalab release
