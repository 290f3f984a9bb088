"""The Unigram pass's layout and lattice (`models/unigram/viterbi.py`, `lattice.py`): where each
(end position, word) is kept, and what a vocabulary too large to pack is told."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfpipe.tokenization import UnsupportedComponentError
from tfpipe.tokenization.models.unigram.lattice import PieceLattice
from tfpipe.tokenization.models.unigram.viterbi import FIRST_STEPS, VITERBI_UNROLL, pass_layout


def layout_entries(lengths: list[int]) -> tuple[int, list[int]]:
    """(entries, every (end position, word) entry's index), for words sorted longest first."""
    layout = pass_layout(tf.constant(lengths, tf.int32))
    offsets = layout.step_offsets.numpy()
    at = [int(offsets[end - 1]) + word for word, n in enumerate(lengths) for end in range(1, n + 1)]
    return int(layout.entries), at


@pytest.mark.parametrize(
    "lengths",
    [
        [1],
        [5, 3, 2, 2, 1],
        [FIRST_STEPS] * 3,
        [FIRST_STEPS + 1, 2],
        [FIRST_STEPS + VITERBI_UNROLL + 1, FIRST_STEPS + VITERBI_UNROLL, 2],
        [40, 17, 9, 3, 1, 1],
    ],
)
def test_every_position_of_every_word_has_an_entry_of_its_own(lengths):
    entries, at = layout_entries(lengths)
    assert len(set(at)) == len(at)
    assert min(at) >= 0 and max(at) < entries


def test_words_ending_in_the_first_steps_hold_no_entries_past_their_end():
    """Many short distinct words (CJK text) would otherwise hold up to a turn's entries each."""
    short = [FIRST_STEPS - 1] * 3 + [2] * 1000 + [1] * 10
    layout = pass_layout(tf.constant(short, tf.int32))
    assert int(layout.entries) == sum(short)
    assert layout.turn_words.shape == [0]


def test_a_pass_over_no_words_has_no_entries_and_no_turns():
    layout = pass_layout(tf.zeros([0], tf.int32))
    assert int(layout.entries) == 0
    assert layout.turn_words.shape == [0]


def test_later_turns_run_over_the_words_running_at_their_first_position():
    lengths = [FIRST_STEPS + 2 * VITERBI_UNROLL, FIRST_STEPS + 2, 2]
    first_steps = 3 * 2 + 2 * (FIRST_STEPS - 2)
    later_turns = 2 * VITERBI_UNROLL + 1 * VITERBI_UNROLL
    assert layout_entries(lengths)[0] == first_steps + later_turns
    assert pass_layout(tf.constant(lengths, tf.int32)).turn_words.numpy().tolist() == [2, 1]


def test_a_vocabulary_whose_pieces_cannot_be_packed_is_refused():
    ids = {f"p{index}": index for index in range(2**16 - 1)}
    ids["a" * 2**14] = len(ids)
    with pytest.raises(UnsupportedComponentError, match="vocabulary too large"):
        PieceLattice(ids, np.zeros(len(ids)), unk_id=0)
