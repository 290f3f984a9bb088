"""A tokenizer checkpoint read as transformers and `tokenizers` read it: the tokenizer.json
text, size-checked and checked for components tfpipe compiles, and the transformers-level
settings around it."""

from __future__ import annotations

import copy
import os
import threading
from collections import OrderedDict
from pathlib import Path

from tfpipe.json_files import parse_json_object, read_json_object
from tfpipe.tokenization.models import model_type
from tfpipe.tokenization.pipeline import check_supported

# transformers' VERY_LARGE_INTEGER marks "no model_max_length"; anything this big is no limit.
NO_LIMIT = int(1e20)
# Bounds the memory a hostile tokenizer.json can make parsing take (a 10M-entry vocabulary
# is over 140 MB); the largest real ones (Gemma 3, 262k entries) are about 33 MB.
MAX_TOKENIZER_JSON_BYTES = 64 * 2**20
# load_reference's memo: enough for the checkpoints one program (or one test file) uses.
REFERENCES_KEPT = 4
_REFERENCES: OrderedDict[tuple, tuple[str, dict]] = OrderedDict()
_REFERENCES_LOCK = threading.Lock()


def parse_tokenizer_json(text: str | bytes, source: str) -> dict:
    """The tokenizer.json object, or a ValueError naming `source` (see parse_json_object)."""
    return parse_json_object(text, source, "tokenizer.json", MAX_TOKENIZER_JSON_BYTES)


def read_as_tokenizers_does(tokenizer_json: str) -> dict:
    """The tokenizer.json object with its Unigram scores as `tokenizers` holds them.

    Its JSON float parser is not correctly rounded (serde_json without float_roundtrip): a
    score written with 17 significant digits may load one unit in the last place away from
    what Python reads (8,334 of t5-small's 32,100 scores), and sums of scores decide between
    segmentations that tie. So a Unigram document is compiled as `tokenizers` writes it back,
    which Python reads exactly; documents `tokenizers` wrote (from_pretrained's, get_config's)
    come back unchanged. Other models hold no float that changes ids.
    """
    document = parse_tokenizer_json(tokenizer_json, "tokenizer_json")
    check_supported(document)
    model = document.get("model")
    if not isinstance(model, dict) or model_type(model) != "Unigram":
        return document
    from tokenizers import Tokenizer

    try:
        written = Tokenizer.from_str(tokenizer_json).to_str()
    except Exception as error:
        # tokenizers fails with a bare Exception naming no input.
        raise ValueError(
            f"tokenizer_json cannot be read by tokenizers: {type(error).__name__}: {error}"
        ) from None
    return parse_tokenizer_json(written, "tokenizer_json")


def load_reference(path: str | Path) -> tuple[str, dict]:
    """(tokenizer.json text, transformers-level settings) as transformers loads `path`.

    Loading through transformers gives exactly what `AutoTokenizer` users get: the
    post-processor transformers may rebuild from tokenizer_config.json, model_max_length,
    padding/truncation sides, the pad token and which outputs the model takes.

    The last few loads are remembered, keyed by the resolved path and the name, size and
    modification time (ns) of every file in the folder: transformers reads only those files
    of a local checkpoint, so an unchanged key means an unchanged result, while any file
    written since loads again. It is worth it because the load costs about 0.4 s (MiniLM)
    to 1 s (t5-small), more than building a layer whose tokenizer is already compiled;
    the memo is bounded because it holds tokenizer.json texts of up to 64 MB.
    """
    path = Path(path)
    key = _checkpoint_key(path)
    if key is None:
        return _read_reference(path)
    with _REFERENCES_LOCK:
        known = _REFERENCES.pop(key, None)
    if known is None:
        known = _read_reference(path)
    with _REFERENCES_LOCK:
        _REFERENCES[key] = known
        while len(_REFERENCES) > REFERENCES_KEPT:
            _REFERENCES.popitem(last=False)
    tokenizer_json, settings = known
    return tokenizer_json, copy.deepcopy(settings)


def _checkpoint_key(path: Path) -> tuple | None:
    """The resolved path and (name, size, mtime_ns) of its files; None when it is neither
    a file nor a folder (reading it then raises)."""
    if path.is_file():
        stats = [(path.name, path.stat())]
    elif path.is_dir():
        stats = [(entry.name, entry.stat()) for entry in os.scandir(path) if entry.is_file()]
    else:
        return None
    files = sorted((name, stat.st_size, stat.st_mtime_ns) for name, stat in stats)
    return (str(path.resolve()), tuple(files))


def _read_reference(path: Path) -> tuple[str, dict]:
    """load_reference without the memo."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    document_path = path / "tokenizer.json" if path.is_dir() else path
    if document_path.is_file():
        check_supported(read_json_object(document_path, "tokenizer.json", MAX_TOKENIZER_JSON_BYTES))
    if not path.exists():
        raise FileNotFoundError(f"no tokenizer checkpoint or tokenizer.json at {path}")
    try:
        if path.is_file():
            reference = PreTrainedTokenizerFast(tokenizer_file=str(path))
        else:
            reference = AutoTokenizer.from_pretrained(
                str(path), local_files_only=True, use_fast=True, trust_remote_code=False
            )
    except (OSError, ValueError):
        raise
    except Exception as error:
        # A malformed tokenizer.json (a wrong type, a negative id, nesting past its recursion
        # limit) fails in tokenizers with a bare Exception, or in transformers with a
        # TypeError or KeyError, naming no file.
        raise ValueError(
            f"{document_path} cannot be read by tokenizers: {type(error).__name__}: {error}"
        ) from None
    if not getattr(reference, "is_fast", False):
        raise ValueError(f"{path} has no fast (tokenizer.json) tokenizer")
    settings = {
        "model_max_length": int(min(reference.model_max_length, NO_LIMIT)),
        "padding_side": reference.padding_side,
        "truncation_side": reference.truncation_side,
        "pad_token_id": reference.pad_token_id,
        "pad_token_type_id": int(reference.pad_token_type_id),
        "model_input_names": list(reference.model_input_names),
    }
    return reference.backend_tokenizer.to_str(), settings
