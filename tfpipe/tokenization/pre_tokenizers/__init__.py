"""Pre-tokenizers: tokenizer.json's `pre_tokenizer` section compiled to a chain of steps.

`PRE_TOKENIZERS` maps each supported `type` to its compiler (component JSON → steps) and is the
one list of what is supported. A `Sequence` is no component but a container: its children,
flattened, run in order, each working on the pieces the previous one produced. A step either
splits the pieces (a split stage) or rewrites their code points (a `Rewrite`: ByteLevel's
leading space and byte-level alphabet, Metaspace's replacement). `PreTokenizer` runs each run
of consecutive split stages as one `SplitPhase` and the rewrites between the phases, so the
components may come in any order: what follows a rewrite sees its output.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.pre_tokenizers.byte_level import compile_byte_level
from tfpipe.tokenization.pre_tokenizers.delimiter import compile_char_delimiter_split
from tfpipe.tokenization.pre_tokenizers.digits import compile_digits
from tfpipe.tokenization.pre_tokenizers.fixed_length import compile_fixed_length
from tfpipe.tokenization.pre_tokenizers.metaspace import compile_metaspace
from tfpipe.tokenization.pre_tokenizers.punctuation import (
    compile_bert_pre_tokenizer,
    compile_punctuation,
)
from tfpipe.tokenization.pre_tokenizers.split import compile_split
from tfpipe.tokenization.pre_tokenizers.split_stages import SECTION, Rewrite, SplitPhase, Stage
from tfpipe.tokenization.pre_tokenizers.unicode_scripts import compile_unicode_scripts
from tfpipe.tokenization.pre_tokenizers.whitespace import (
    compile_whitespace,
    compile_whitespace_split,
)
from tfpipe.tokenization.ragged_ops import positions_in_rows, row_ids

Step = Stage | Rewrite
# Payload entries: which code points sit at original offset 0; their alignments.
FLAGS, ALIGNMENT = "anchored", "alignment"

PRE_TOKENIZERS: dict[str, Callable[[dict], list[Step]]] = {
    "WhitespaceSplit": compile_whitespace_split,
    "BertPreTokenizer": compile_bert_pre_tokenizer,
    "Whitespace": compile_whitespace,
    "Punctuation": compile_punctuation,
    "Digits": compile_digits,
    "ByteLevel": compile_byte_level,
    "Metaspace": compile_metaspace,
    "Split": compile_split,
    "CharDelimiterSplit": compile_char_delimiter_split,
    "FixedLength": compile_fixed_length,
    "UnicodeScripts": compile_unicode_scripts,
}


def flatten(component: dict | None) -> list[dict]:
    """The components of the section in order, nested Sequences opened."""
    if component is None:
        return []
    if component.get("type") == "Sequence":
        return [c for child in component["pretokenizers"] for c in flatten(child)]
    return [component]


def compile_steps(components: list[dict]) -> list[Step]:
    """The steps of (flattened) components, in order; unknown types fail here."""
    steps: list[Step] = []
    for component in components:
        kind = component.get("type")
        if kind not in PRE_TOKENIZERS:
            raise UnsupportedComponentError(SECTION, kind)
        steps += PRE_TOKENIZERS[kind](component)
    return steps


def chain(steps: list[Step]) -> list[SplitPhase | Rewrite]:
    """The steps with each run of split stages as one `SplitPhase` (one class lookup); a
    split stage that commutes with the rewrite before it joins the phase before that."""
    chained: list[SplitPhase | Rewrite] = []
    run: list[Stage] = []
    for step in steps:
        if isinstance(step, Rewrite):
            chained += [SplitPhase(run), step] if run else [step]
            run = []
        elif not run and _commutes_back(chained, step):
            chained[-2] = SplitPhase([*chained[-2].stages, step])
        else:
            run.append(step)
    return [*chained, SplitPhase(run)] if run else chained


def _commutes_back(chained: list[SplitPhase | Rewrite], stage: Stage) -> bool:
    """Whether `stage`, right after the last rewrite, may end the phase before it instead."""
    if len(chained) < 2 or not isinstance(chained[-2], SplitPhase):
        return False
    return isinstance(chained[-1], Rewrite) and chained[-1].split_commutes(
        stage, chained[-2].stages
    )


class PreTokenizer:
    """The compiled `pre_tokenizer` section: pieces of code points → words.

    Rewrites keep the pieces (a piece stays one piece); phases split them, and the owner of
    each word is traced back through the phases to the input piece.
    """

    def __init__(self, component: dict | None) -> None:
        self.steps = chain(compile_steps(flatten(component)))
        readers = [i for i, s in enumerate(self.steps) if isinstance(s, Rewrite) and s.reads_anchor]
        # Offset-0 flags are carried up to the last step that reads them.
        self.anchored_steps = readers[-1] + 1 if readers else 0

    @property
    def needs_anchor(self) -> bool:
        """Whether `__call__` needs each piece's anchored prefix (Metaspace `first`)."""
        return self.anchored_steps > 0

    def __call__(
        self, pieces: tf.RaggedTensor, anchored: tf.Tensor | None = None
    ) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """Split a [pieces, (code points)] batch into ([words, (code points)], piece of word).

        `anchored` (int32 per piece, required when `needs_anchor`): how many leading code points
        of each piece sit at offset 0 of the original text.
        """
        payload = {}
        if self.needs_anchor:
            if anchored is None:
                raise ValueError("Metaspace prepend_scheme 'first' needs `anchored`")
            payload[FLAGS] = positions_in_rows(pieces) < tf.gather(anchored, row_ids(pieces))
        words, piece_of, _ = self._split(pieces, payload)
        return words, piece_of

    def aligned(
        self, pieces: tf.RaggedTensor, alignment: tf.Tensor
    ) -> tuple[tf.RaggedTensor, tf.Tensor, tf.Tensor]:
        """`__call__`, and the alignment (int32 [code points, 2], in the original text) of the
        words' code points, from that of the pieces': what a rewrite inserts or expands takes
        the alignment of the code point it comes from. Offset 0 is read off the alignments."""
        payload = {ALIGNMENT: alignment}
        if self.needs_anchor:
            payload[FLAGS] = tf.equal(alignment[:, 0], 0)
        words, piece_of, payload = self._split(pieces, payload)
        return words, piece_of, payload[ALIGNMENT]

    def _split(self, pieces: tf.RaggedTensor, payload: dict[str, tf.Tensor]):
        """Run the steps, carrying per-code-point `payload` tensors along."""
        piece_of = None
        for index, step in enumerate(self.steps):
            if index == self.anchored_steps:
                payload = {name: value for name, value in payload.items() if name != FLAGS}
            if isinstance(step, Rewrite):
                pieces, source = step.rewrite(pieces, payload.get(FLAGS), track=bool(payload))
                if source is not None:
                    payload = {name: tf.gather(value, source) for name, value in payload.items()}
                continue
            pieces, owner, payload = step.split(pieces, payload)
            piece_of = owner if piece_of is None else tf.gather(piece_of, owner)
        if piece_of is None:
            piece_of = tf.range(tf.cast(pieces.nrows(), tf.int32))
        return pieces, piece_of, payload
