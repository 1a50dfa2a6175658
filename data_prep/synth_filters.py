"""Pure functions that turn an LLM's raw output into one query, or a reason to drop it.

Reasons, in the order they are checked: ``empty``, ``truncated`` (the output hit the token limit mid-line),
``too_short``, ``too_long``, ``copies_passage``, then ``round_trip`` (the first stage does not find the passage
for its query), ``ambiguous`` (several other passages match the query at least as well as its own) and
``duplicate`` (the same normalized text as an earlier kept query).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np

DROP_REASONS = ("generator_error", "empty", "truncated", "too_short", "too_long", "copies_passage", "round_trip",
                "ambiguous", "duplicate")
# a leading label the model adds although told not to: "Question:", "The question is:", "Query 1:", "1.", "- "
_LABEL = re.compile(r"^\s*(?:(?:the\s+)?(?:question|query|search query|q|claim|answer)(?:\s+is)?\s*\d*\s*[:.\-]\s*"
                    r"|\d+[.)]\s+|[-*•]\s+)", re.IGNORECASE)
# "What is X? How does X ...": one query, the first question
_FIRST_QUESTION = re.compile(r"^(.+?\?)\s+\S")
_QUOTES = "\"'“”‘’`"
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class QueryLimits:
    min_words: int = 3
    max_words: int = 40
    max_copied_fraction: float = 0.75


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters, digits, underscore)."""
    return _WORD.findall(text.lower())


def normalized(text: str) -> str:
    """The form duplicates are compared in: lower case, words only, single spaces."""
    return " ".join(words(text))


def parse_query(raw: str, hit_token_limit: bool = False) -> tuple[Optional[str], Optional[str]]:
    """``(query, None)`` from the first line of ``raw`` that holds words once a leading label and quotes are
    stripped (a line that is only a label, ``Question:``, introduces the query on the next), cut after its first
    question mark, or ``(None, reason)``: ``empty``, or ``truncated`` when the output hit the token limit inside
    the query."""
    lines = [line.strip() for line in raw.strip().splitlines() if line.strip()]
    for i, line in enumerate(lines):
        query = " ".join(_LABEL.sub("", line, count=1).strip().strip(_QUOTES).strip().split())
        first = _FIRST_QUESTION.match(query)
        query = first.group(1) if first else query
        if not words(query):
            continue
        if hit_token_limit and i == len(lines) - 1 and not first and not line.endswith((".", "?", "!")):
            return None, "truncated"
        return query, None
    return None, "empty"


def copied_fraction(query: str, passage: str) -> float:
    """The longest run of consecutive words ``query`` shares with ``passage``, as a share of the query's words
    (difflib's longest common block over word lists)."""
    q, p = words(query), words(passage)
    if not q:
        return 0.0
    match = difflib.SequenceMatcher(None, q, p, autojunk=False).find_longest_match(0, len(q), 0, len(p))
    return match.size / len(q)


def check_query(query: str, passage: str, limits: QueryLimits) -> Optional[str]:
    """The reason to drop ``query`` on its own (``too_short``, ``too_long``, ``copies_passage``), or None."""
    n = len(words(query))
    if n < limits.min_words:
        return "too_short"
    if n > limits.max_words:
        return "too_long"
    q = words(query)
    copied = copied_fraction(query, passage)
    if copied >= limits.max_copied_fraction and copied * len(q) >= 4:
        return "copies_passage"
    return None


def first_occurrences(queries: Iterable[str]) -> list[bool]:
    """For each query, whether it is the first with its normalized text (later ones are duplicates)."""
    seen: set[str] = set()
    out = []
    for query in queries:
        key = normalized(query)
        out.append(key not in seen)
        seen.add(key)
    return out


def round_trip(hits: Sequence[Sequence[str]], sources: Sequence[str], depth: int) -> list[bool]:
    """For each query, whether its source passage is among the first ``depth`` ids the first stage returned."""
    return [source in list(ids)[:depth] for ids, source in zip(hits, sources)]


def as_close_as_source(scores: np.ndarray, source: int, margin: float = 0.0) -> int:
    """How many passages other than ``source`` score at least as high as it, less ``margin`` of its score's size,
    on every row of ``scores`` (``[retrievers, passages]``, e.g. cosine and BM25 of one query against a pool)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1, np.shape(scores)[-1])
    own = scores[:, source:source + 1]
    as_close = np.all(scores >= own - margin * np.abs(own), axis=0)
    return int(as_close.sum()) - 1


def ambiguous(scores: np.ndarray, source: int, max_as_close: Optional[int], margin: float = 0.0) -> bool:
    """Whether more than ``max_as_close`` other passages match the query as well as its source passage on every
    retriever (``as_close_as_source``): a question many passages answer equally, such as one about a table
    repeated on many pages, or about an article's title that each of its chunks carries. None: never."""
    return max_as_close is not None and as_close_as_source(scores, source, margin) > max_as_close
