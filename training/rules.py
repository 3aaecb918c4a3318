"""Pairs made by rule from a claim: its negation, and its words as speech recognition writes
them. Used to train the claim checker and, on questions it never saw, to test it."""

from __future__ import annotations

import re

_AUX = re.compile(
    r"\b(is|are|was|were|can|does|do|will|should|must|has|have|keeps|makes|runs|gives|"
    r"returns|uses|lets|means|needs|stays|prevents|allows|guarantees)\b",
    re.IGNORECASE,
)
_NEGATE = {
    "is": "is not",
    "are": "are not",
    "was": "was not",
    "were": "were not",
    "can": "cannot",
    "does": "does not",
    "do": "do not",
    "will": "will not",
    "should": "should not",
    "must": "must not",
    "has": "does not have",
    "have": "do not have",
}


def negate(claim: str) -> str | None:
    """The claim with its first verb negated, when that can be done by rule."""
    match = _AUX.search(claim)
    if match is None:
        return None
    word = match.group(1)
    lower = word.lower()
    if lower in _NEGATE:
        replacement = _NEGATE[lower]
    else:  # keeps -> does not keep; makes -> does not make
        stem = lower[:-1] if lower.endswith("s") else lower
        replacement = f"does not {stem}"
    return claim[: match.start()] + replacement + claim[match.end() :]


def spoken(sentence: str) -> str:
    """What speech recognition writes: lower case, no punctuation."""
    return re.sub(r"[^\w\s']", "", sentence.lower())
