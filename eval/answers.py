"""Answer quality against gold answers: SQuAD-style exact match and token F1, and answer-in-context.

Written here, not imported: the official SQuAD v1.1 script is not on PyPI (``evaluate`` fetches it from the
Hub at run time). The tests check it against the official script's behaviour on hand-computed cases.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and the articles a/an/the, collapse whitespace (SQuAD v1.1)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals any normalised gold answer."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in golds))


def _f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """Best token-overlap F1 of the prediction against any gold answer (0.0 with no gold answers)."""
    return max((_f1(prediction, g) for g in golds), default=0.0)


def answer_in_context(passages: Sequence[str], golds: Sequence[str]) -> float:
    """1.0 when some normalised gold answer appears inside some normalised passage sent to the generator."""
    texts = [normalize_answer(p) for p in passages]
    for gold in golds:
        g = normalize_answer(gold)
        if g and any(g in t for t in texts):
            return 1.0
    return 0.0
