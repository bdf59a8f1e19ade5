# skbig developer entry points.  `make demo` and `make test` create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel of torch is installed first so nothing pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
PLUGINS := $(wildcard plugins/*/pyproject.toml)
PLUGIN_TESTS := $(wildcard $(foreach p,$(PLUGINS),$(dir $(p))tests))
STAMP := $(VENV)/.skbig-installed
PYTEST_FLAGS ?=
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: help venv demo test test-all lint format clean

help:
	@echo "make demo      fit, evaluate, save and reload a TextClassifier on bundled data"
	@echo "make test      the default test suite (no slow tests)"
	@echo "make test-all  every test, slow ones included"
	@echo "make lint      ruff and mypy"

venv: $(STAMP)

$(STAMP): pyproject.toml $(PLUGINS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]" $(foreach p,$(PLUGINS),-e "$(dir $(p))[test]")
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m skbig demo

test: $(STAMP)
	bash tests/with_postgres.sh $(PY) -m pytest -m "not slow" $(PYTEST_FLAGS) tests $(PLUGIN_TESTS)

test-all: $(STAMP)
	SKBIG_HYPOTHESIS=full bash tests/with_postgres.sh $(PY) -m pytest $(PYTEST_FLAGS) tests $(PLUGIN_TESTS)

lint: $(STAMP)
	$(PY) -m ruff check skbig tests plugins benchmarks examples
	$(PY) -m ruff format --check skbig tests plugins benchmarks examples
	$(PY) -m mypy

format: $(STAMP)
	$(PY) -m ruff format skbig tests plugins benchmarks examples
	$(PY) -m ruff check --fix skbig tests plugins benchmarks examples

clean:
	rm -rf $(VENV) build dist *.egg-info
