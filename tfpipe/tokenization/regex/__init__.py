"""Oniguruma patterns (the `Split` pre-tokenizer's) run in the graph by RE2 with their semantics.

`tokenizers` matches Split patterns with Oniguruma; TensorFlow's regex ops use RE2. The two
agree on leftmost-first alternation and greedy/lazy repetition, but not on Unicode tables,
case folding or look-ahead, which RE2 lacks. So a pattern is compiled in three steps:
1. parser: parse it into single-character atoms combined by sequence, alternation, groups and
   repetition;
2. char_classes: ask the installed `tokenizers` which code points each atom matches, and group
   the code points that no atom tells apart: the graph maps every character to its group's
   representative;
3. re2: write each atom as an RE2 class of representatives and rewrite a trailing look-ahead
   with a sentinel.
"""
