"""Test artifacts kept on disk between runs, keyed by a digest of the code that builds them.

Trained tokenizers, tiny checkpoints and exports take seconds to minutes to build and are
the same from run to run: a second run reuses them, and any change to the code that builds
them (tfpipe itself for exports, the test module for trained tokenizers) or to the installed
libraries changes the digest, so they are built afresh. ``TFPIPE_TEST_CACHE=off`` builds
everything in a temporary folder instead.

Folders are built beside their final place and renamed into it, so two test processes
building the same artifact at once both end up with one complete copy.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIBRARIES = ("tensorflow", "tf-keras", "transformers", "tokenizers")


@functools.cache
def cache_root() -> Path:
    if os.environ.get("TFPIPE_TEST_CACHE") == "off":
        path = Path(tempfile.mkdtemp(prefix="tfpipe-test-cache-"))
        atexit.register(shutil.rmtree, path, ignore_errors=True)
        return path
    return REPO / ".pytest_cache" / "tfpipe"


def _files(paths: Iterable[Path]) -> list[Path]:
    found = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in (".py", ".json"))
        else:
            found.append(path)
    return found


@functools.cache
def code_digest(*paths: Path) -> str:
    """A digest of the files (folders: their .py and .json files) and the library versions."""
    digest = hashlib.sha256()
    for library in LIBRARIES:
        digest.update(f"{library}=={metadata.version(library)}\n".encode())
    for file in _files(paths):
        digest.update(str(file.relative_to(REPO)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]


def cached_folder(kind: str, name: str, digest: str, build: Callable[[Path], object]) -> Path:
    """``cache/KIND-DIGEST/NAME``, made by ``build(folder)`` unless a previous run made it."""
    folder = cache_root() / f"{kind}-{digest}" / hashlib.sha256(name.encode()).hexdigest()[:16]
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        build(staging)
        staging.rename(folder)
    except OSError:
        if not folder.is_dir():  # the rename failed for another reason than a finished twin
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
