"""Word-level differences between a model's generated text and the base's.

Why words, not characters: a broken model's answer ("Super Bowl LII LII LII") differs from the
base's ("Super Bowl LII") by whole words, and marking words reads at a glance. Texts are split on
whitespace (runs of spaces and newlines count as one separator) and compared with difflib's
SequenceMatcher without its junk heuristic, so repeated words are matched like any other.
"""
from __future__ import annotations

import difflib

SAME, INSERTED, DELETED = "same", "ins", "del"


def word_diff(base: str, other: str) -> list[tuple[str, str]]:
    """Segments (op, words) that turn `base` into `other`, in reading order: "same" words are in
    both, "del" only in the base's text, "ins" only in the other's (a replacement is a "del"
    followed by an "ins"). Joining the "same" and "ins" words with spaces gives `other`'s words."""
    a, b = str(base).split(), str(other).split()
    out: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append((SAME, " ".join(b[j1:j2])))
            continue
        if i2 > i1:
            out.append((DELETED, " ".join(a[i1:i2])))
        if j2 > j1:
            out.append((INSERTED, " ".join(b[j1:j2])))
    return out


def changed_share(base: str, other: str) -> float:
    """Share of words not shared with the base's text: 1 − 2·matched / (words in both texts);
    0 for identical texts (two empty texts included), 1 when no word is shared."""
    a, b = str(base).split(), str(other).split()
    if not a and not b:
        return 0.0
    return 1.0 - difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
