"""Pure functions that turn an LLM's raw output into one query, or a reason to drop it.

Reasons, in the order they are checked: ``empty``, ``truncated`` (the output hit the token limit mid-line),
``too_short``, ``too_long``, ``copies_passage``, then ``round_trip`` (the first stage does not find the passage
for its query) and ``duplicate`` (the same normalized text as an earlier kept query).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

DROP_REASONS = ("generator_error", "empty", "truncated", "too_short", "too_long", "copies_passage", "round_trip",
                "duplicate")
# a leading label the model adds although told not to: "Question:", "Query 1:", "Q:", "1.", "- "
_LABEL = re.compile(r"^\s*(?:(?:question|query|search query|q|claim|answer)\s*\d*\s*[:.\-]\s*|\d+[.)]\s+|[-*•]\s+)",
                    re.IGNORECASE)
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
    """``(query, None)`` from the first non-empty line of ``raw`` (a leading label and quotes stripped), or
    ``(None, reason)``: ``empty``, or ``truncated`` when the output hit the token limit inside its only line."""
    lines = [line.strip() for line in raw.strip().splitlines() if line.strip()]
    if not lines:
        return None, "empty"
    if hit_token_limit and len(lines) == 1 and not lines[0].endswith((".", "?", "!")):
        return None, "truncated"
    query = _LABEL.sub("", lines[0], count=1).strip().strip(_QUOTES).strip()
    query = " ".join(query.split())
    return (query, None) if words(query) else (None, "empty")


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
