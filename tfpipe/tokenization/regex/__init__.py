"""Oniguruma patterns (`Split`'s and `Replace`'s) run in the graph by RE2 with their semantics.

`tokenizers` matches Regex patterns with Oniguruma; TensorFlow's regex ops use RE2. The two
agree on leftmost-first alternation and greedy/lazy repetition, but not on Unicode tables,
case folding, word boundaries or look-ahead, which RE2 lacks. So a pattern is compiled in
three steps, then matched:
1. parser: parse it into single-character atoms combined by sequence, alternation, groups and
   repetition, with look-aheads and assertions (`\\b`, `^`) as nodes of their own;
2. char_classes: ask the installed `tokenizers` which code points each atom matches, and group
   the code points that no atom tells apart: the graph maps every character to its group's
   representative;
3. re2: write each atom as an RE2 class of representatives, the assertions as RE2's own over
   representatives chosen to keep their meaning, and rewrite a trailing look-ahead with a
   sentinel;
4. matcher: in the graph, the gap and match segments of every piece, which `Split` and
   `Replace` fold into their outputs.
"""
