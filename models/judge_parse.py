"""Reading an LLM judge's answers: pure functions, no model.

- pointwise: the log-odds of "yes" against "no" from the reply's first-token log-probabilities, or from the reply's
  text where the backend reports none;
- listwise: a RankGPT permutation ("[2] > [1] > [3]") that survives duplicates, missing ids, ids out of range and
  prose around them;
- the sliding windows RankGPT reranks a long candidate list with.
"""

from __future__ import annotations

import math
import re

YES = ("yes", "true", "relevant")
NO = ("no", "false", "irrelevant", "not")
TEXT_LOGIT = 4.0  # the log-odds a bare "yes"/"no" reply gets when the backend reports no log-probabilities


class JudgeParseError(ValueError):
    """The judge's answer holds no usable verdict (counted as ``unparseable`` and retried)."""


def _word(token: str) -> str:
    return re.sub(r"[^a-z]", "", token.strip().lower())


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def yes_no_logit(logprobs: dict[str, float], text: str = "") -> float:
    """log P(yes) - log P(no) of a reply's first token, every spelling of each summed ("Yes", " yes", "YES").

    A word missing from the reported top tokens is at most as likely as the least likely of them, so that bound
    stands in for it. Without log-probabilities the reply's first word decides: ``±TEXT_LOGIT``.

    Raises:
        JudgeParseError: neither word is among the top tokens, and the text starts with neither.
    """
    yes = [lp for token, lp in logprobs.items() if _word(token) in YES[:1]]
    no = [lp for token, lp in logprobs.items() if _word(token) in NO[:1]]
    if yes or no:
        floor = min(logprobs.values())
        return (_logsumexp(yes) if yes else floor) - (_logsumexp(no) if no else floor)
    words = text.strip().split()
    first = _word(words[0]) if words else ""
    if first in YES:
        return TEXT_LOGIT
    if first in NO:
        return -TEXT_LOGIT
    raise JudgeParseError(f"expected yes or no, got {text[:80]!r}"
                          + (f" (top tokens {sorted(logprobs, key=logprobs.get)[-5:]})" if logprobs else ""))


def parse_permutation(text: str, n: int) -> list[int]:
    """The order (0-based indices into the ``n`` passages shown, best first) a listwise answer gives.

    Ids are read in brackets ("[3]") when the answer has any, else as bare numbers; ids outside 1..n are skipped,
    a repeated id counts at its first place, and ids the answer leaves out follow in the order they were shown.

    Raises:
        JudgeParseError: the answer names none of the ``n`` ids.
    """
    found = re.findall(r"\[(\d+)\]", text) or re.findall(r"\b(\d+)\b", text)
    order = list(dict.fromkeys(int(i) - 1 for i in found if 1 <= int(i) <= n))
    if not order:
        raise JudgeParseError(f"expected a ranking of ids 1..{n} such as [2] > [1], got {text[:80]!r}")
    return order + [i for i in range(n) if i not in set(order)]


def sliding_windows(n: int, window: int, step: int) -> list[tuple[int, int]]:
    """RankGPT's windows ``(start, end)`` over ``n`` candidates, from the last to the first: each reranks
    ``window`` of them, then moves ``step`` towards the top, so a relevant passage can climb to first place."""
    if n <= window:
        return [(0, n)]
    spans, end = [], n
    while True:
        start = max(0, end - window)
        spans.append((start, end))
        if start == 0:
            return spans
        end -= step


def listwise_scores(order: list[int]) -> list[float]:
    """Scores, in the order shown, that sort as ``order`` does: n for the first place, down to 1."""
    scores = [0.0] * len(order)
    for place, index in enumerate(order):
        scores[index] = float(len(order) - place)
    return scores
