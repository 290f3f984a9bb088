"""`UnicodeScripts`: pieces split where the script changes, SentencePiece-style.

The reference's scripts are its own (an old Unicode table, Hiragana, Katakana and U+30FC
counted as Han, U+0020 and every code point its table lacks as "Any"), so each code point's
script is probed from it. Its split rule: a boundary before each code point whose script is
not Any and differs from the last non-Any script of the piece; Any code points join the run
before them, and those leading a piece (before its first non-Any one) are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.codepoint_tables import (
    NUM_CODEPOINTS,
    BlockTable,
    all_codepoints,
    cached_arrays,
)
from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.pre_tokenizers.split_stages import (
    SECTION,
    reference_pre_tokenizer,
    split_kept,
)
from tfpipe.tokenization.ragged_ops import previous, row_ids

ANY = 0
COMPONENT = {"type": "UnicodeScripts"}


def _probe_scripts() -> dict[str, np.ndarray]:
    """0 for Any (a code point alone makes no piece), else 1 + the index of its script.

    The code points that are not Any, in order and as one text, split into runs of one
    script; each run joins the first known script whose sample it does not split from.
    """
    splitter = reference_pre_tokenizer(COMPONENT)
    cps = all_codepoints()
    scripted = cps[[bool(splitter.pre_tokenize_str(chr(cp))) for cp in cps.tolist()]]
    runs = splitter.pre_tokenize_str("".join(map(chr, scripted.tolist())))
    classes = np.zeros(NUM_CODEPOINTS, np.int32)
    samples: list[str] = []
    start = 0
    for run, _ in runs:
        sample = run[0]
        same = (i for i, s in enumerate(samples) if len(splitter.pre_tokenize_str(s + sample)) == 1)
        script = next(same, len(samples))
        if script == len(samples):
            samples.append(sample)
        classes[scripted[start : start + len(run)]] = 1 + script
        start += len(run)
    if start != len(scripted):
        raise UnsupportedComponentError(SECTION, "UnicodeScripts", "runs do not tile the text")
    return {"classes": classes}


def script_classes() -> np.ndarray:
    """Each code point's script as the reference sees it (ANY or a script number)."""
    return cached_arrays({"classes": COMPONENT}, _probe_scripts)["classes"]


@dataclass
class UnicodeScripts:
    """The split stage; the scripts bring their own table, not a packed 2-bit class."""

    scripts: BlockTable
    classes = None

    def apply(self, values, cls, starts, removed):
        return split_kept(values, starts, removed, self._split)

    def _split(self, pieces: tf.RaggedTensor) -> tuple[tf.Tensor, tf.Tensor]:
        (script,) = self.scripts.lookup(pieces.values)
        piece = row_ids(pieces)
        scripted_at = tf.where(script != ANY)[:, 0]
        run_script = tf.gather(script, scripted_at)
        run_piece = tf.gather(piece, scripted_at)
        changes = (previous(run_piece, -1) != run_piece) | (previous(run_script, -1) != run_script)
        size = tf.shape(script, out_type=tf.int64)
        boundary = tf.scatter_nd(scripted_at[:, None], changes, size)
        index = tf.range(tf.size(script))
        first_scripted = tf.math.unsorted_segment_min(
            tf.gather(index, scripted_at), run_piece, pieces.nrows(out_type=tf.int32)
        )
        leading_any = index < tf.gather(first_scripted, piece)
        return boundary, leading_any


def compile_unicode_scripts(component: dict) -> list[UnicodeScripts]:
    return [UnicodeScripts(BlockTable.from_dense(script_classes()))]
