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
# Files from which transformers may build a tokenizer, but tfpipe may not without tokenizer.json.
SLOW_TOKENIZER_FILES = frozenset(
    {"tokenizer_config.json", "vocab.txt", "vocab.json", "merges.txt", "spiece.model",
     "tokenizer.model", "sentencepiece.bpe.model"}
)  # fmt: skip
FILES_LISTED = 12
# The packages transformers' slow-to-fast conversion (convert_slow_tokenizer) needs, and the
# transformers.utils.import_utils check of each. It converts when a folder has no
# tokenizer.json, or when tokenizer_config.json sets from_slow or (Llama's and T5's fast
# tokenizers) add_prefix_space.
CONVERSION_PACKAGES = {
    "sentencepiece": "is_sentencepiece_available",
    "protobuf": "is_protobuf_available",
}


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
    return parse_tokenizer_json(_backend(tokenizer_json).to_str(), "tokenizer_json")


def pad_token_id(tokenizer_json: str, pad_token: str) -> int:
    """The id HF pads with once `tokenizer.pad_token = pad_token`: `tokenizers`' token_to_id.

    A token of neither the vocabulary nor the added tokens is refused: HF would silently pad
    with the unknown token's id (or fail when padding, if there is none).
    """
    if not isinstance(pad_token, str) or not pad_token:
        raise ValueError(f"pad_token must be a token string, e.g. the eos token, not {pad_token!r}")
    parse_tokenizer_json(tokenizer_json, "tokenizer_json")  # its size checked before tokenizers
    index = _backend(tokenizer_json).token_to_id(pad_token)
    if index is None:
        raise ValueError(
            f"pad_token {pad_token!r} is not a token of the tokenizer's vocabulary or added "
            "tokens: pass one that is, e.g. its eos token"
        )
    return index


def _backend(tokenizer_json: str):
    """`tokenizers`' Tokenizer of the document, or a ValueError: tokenizers fails with a bare
    Exception naming no input."""
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_str(tokenizer_json)
    except Exception as error:
        raise ValueError(
            f"tokenizer_json cannot be read by tokenizers: {type(error).__name__}: {error}"
        ) from None


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
    # Read (size-checked) before transformers reads it, but checked only if loading fails:
    # transformers ignores it when it converts the slow tokenizer's files instead, and what
    # it did load is checked when it is compiled.
    document = (
        read_json_object(document_path, "tokenizer.json", MAX_TOKENIZER_JSON_BYTES)
        if document_path.is_file() else None
    )  # fmt: skip
    if not path.exists():
        raise FileNotFoundError(f"no tokenizer checkpoint or tokenizer.json at {path}")
    try:
        if path.is_file():
            reference = PreTrainedTokenizerFast(tokenizer_file=str(path))
        else:
            reference = AutoTokenizer.from_pretrained(
                str(path), local_files_only=True, use_fast=True, trust_remote_code=False
            )
    except Exception as error:
        conversion_error = _conversion_error(path, error) if path.is_dir() else None
        if conversion_error is not None:
            raise conversion_error from None
        if document is not None:
            check_supported(document)  # names a component tokenizers fails on unnamed
        if not document_path.is_file():
            # transformers builds a fast tokenizer from vocab.txt and the like when it can;
            # when it cannot, it fails with errors such as "stat: path should be string".
            raise FileNotFoundError(missing_tokenizer_json(path)) from error
        if isinstance(error, OSError | ValueError):
            raise
        # A malformed tokenizer.json (a wrong type, a negative id, nesting past its recursion
        # limit) fails in tokenizers with a bare Exception, or in transformers with a
        # TypeError or KeyError, naming no file.
        raise ValueError(
            f"{document_path} cannot be read by tokenizers: {type(error).__name__}: {error}"
        ) from None
    if not getattr(reference, "is_fast", False):
        if not document_path.is_file():
            raise FileNotFoundError(missing_tokenizer_json(path))
        raise ValueError(f"{path} has no fast (tokenizer.json) tokenizer")
    # Reading a special token that is not set (gpt2's pad token) would log an error.
    reference.verbose = False
    settings = {
        "model_max_length": int(min(reference.model_max_length, NO_LIMIT)),
        "padding_side": reference.padding_side,
        "truncation_side": reference.truncation_side,
        "pad_token_id": reference.pad_token_id,
        "pad_token_type_id": int(reference.pad_token_type_id),
        "eos_token": reference.eos_token,
        # The special tokens the token-level tasks need, as transformers' ids (None: unset).
        "mask_token_id": reference.mask_token_id,
        "cls_token_id": reference.cls_token_id,
        "unk_token_id": reference.unk_token_id,
        "model_input_names": list(reference.model_input_names),
        "clean_up_tokenization_spaces": bool(reference.clean_up_tokenization_spaces),
    }
    return reference.backend_tokenizer.to_str(), settings


def missing_tokenizer_json(folder: Path) -> str:
    """Which files `folder` has instead of a tokenizer.json, and how to get one."""
    found = sorted(entry.name for entry in os.scandir(folder) if entry.is_file())
    listed = ", ".join(found[:FILES_LISTED]) + (", ..." if len(found) > FILES_LISTED else "")
    message = f"no tokenizer.json in {folder} (found: {listed or 'no files'})"
    if not set(found) & SLOW_TOKENIZER_FILES:
        return (
            f"{message}: copy the model's tokenizer files (tokenizer.json, tokenizer_config.json) "
            "into it, or give pipeline() tokenizer= a folder holding them"
        )
    return (
        f"{message}: tfpipe needs the fast tokenizer's tokenizer.json; write it with "
        "transformers: AutoTokenizer.from_pretrained(folder).save_pretrained(folder)"
    )


def _conversion_error(folder: Path, error: Exception) -> Exception | None:
    """What `folder` lacks for transformers to convert its slow tokenizer's files, when it
    converts them: a package (ImportError) or those files (FileNotFoundError); None when it
    does not convert, or lacks neither (`error` is then about something else).

    transformers' own errors ("Cannot instantiate this tokenizer from a slow version",
    "Either model_file or model_proto must be specified") name neither the folder nor the fix.
    """
    reason = _conversion_reason(folder)
    if reason is None:
        return None
    failed = f"transformers cannot load the tokenizer of {folder} ({type(error).__name__}: {error})"
    converts = f"{reason}, so transformers builds it from the slow tokenizer's files"
    missing = _missing_conversion_packages()
    if missing:
        return ImportError(
            f"{failed}: {converts}, which needs {' and '.join(missing)}, as tfpipe "
            f"declares: pip install {' '.join(missing)}"
        )
    if not _slow_files(folder):
        return FileNotFoundError(
            f"{failed}: {converts}, and it has none: copy the model's (such as tokenizer.model) "
            "into it"
        )
    return None


def _conversion_reason(folder: Path) -> str | None:
    """Why transformers converts the slow tokenizer's files of `folder`, if it does."""
    if not (folder / "tokenizer.json").is_file():
        # Without slow files either, missing_tokenizer_json says what to copy.
        return "it has no tokenizer.json" if _slow_files(folder) else None
    config_path = folder / "tokenizer_config.json"
    try:
        config = read_json_object(config_path, "tokenizer_config.json", MAX_TOKENIZER_JSON_BYTES)
    except (OSError, ValueError):
        return None
    if config.get("add_prefix_space") is not None:
        return "its tokenizer_config.json sets add_prefix_space"
    return "its tokenizer_config.json sets from_slow" if config.get("from_slow") else None


def _missing_conversion_packages() -> list[str]:
    """CONVERSION_PACKAGES transformers found not installed (it checks once, at import)."""
    from transformers.utils import import_utils

    return [
        package for package, check in CONVERSION_PACKAGES.items()
        if not getattr(import_utils, check)()
    ]  # fmt: skip


def _slow_files(folder: Path) -> list[str]:
    """The slow tokenizer's vocabulary files in `folder`."""
    names = SLOW_TOKENIZER_FILES - {"tokenizer_config.json"}
    return sorted(entry.name for entry in os.scandir(folder) if entry.name in names)
