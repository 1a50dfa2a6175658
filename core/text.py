"""Text as models see it: a corpus entry's text, and windows over a sequence (the chunker's passages and the
reranker's long-document reads share them)."""

from __future__ import annotations


def windows(length: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """``[start, end)`` windows of ``size`` units over ``length`` units, consecutive ones sharing ``overlap``."""
    return [(start, min(start + size, length)) for start in range(0, max(length - overlap, 1), size - overlap)
            if start < length]


def doc_text(doc: dict[str, str]) -> str:
    """The text a model sees for a corpus entry: BEIR's ``title + " " + text``."""
    return f"{doc.get('title') or ''} {doc['text']}".strip()
