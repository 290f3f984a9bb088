"""The Unigram model: the best-scoring segmentation, exactly as `tokenizers` finds it
(docs/how-it-works.md#unigram-modelsunigram). Each distinct word of a batch is segmented once:

- `whole_pieces`: the pieces the reference keeps whole, which words take without the pass;
- `lattice`: every piece found in the words, from a trie of the pieces;
- `viterbi`: the stepwise Viterbi pass over all words at once, and its backtracking;
- `long_words`: words past `LONG_WORD_CHARS`, from checked block passes instead;
- `early_stop`: long words under right truncation, from their first characters only;
- `model`: the `Unigram` module, which picks among these per batch and fuses unknowns.
"""

from tfpipe.tokenization.models.unigram.model import Unigram

__all__ = ["Unigram"]
