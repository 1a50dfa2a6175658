"""Lexical candidates with ``bm25s``, and reciprocal rank fusion for hybrid dense + BM25 candidates."""

from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np


class BM25Index:
    """BM25 over a list of texts; ``search`` returns row indices into that list.

    Raises:
        ImportError: bm25s is missing (with the pip command).
    """

    def __init__(self, texts: Sequence[str], stopwords: str = "en"):
        try:
            import bm25s
        except ImportError as exc:
            raise ImportError("BM25 candidates need bm25s: pip install bm25s") from exc
        self._bm25s = bm25s
        self.stopwords = stopwords
        self.retriever = bm25s.BM25()
        self.retriever.index(bm25s.tokenize(list(texts), stopwords=stopwords, show_progress=False),
                             show_progress=False)
        self.size = len(texts)

    def _tokens(self, queries: Sequence[str]) -> list[list[str]]:
        return self._bm25s.tokenize(list(queries), stopwords=self.stopwords, show_progress=False, return_ids=False)

    def search(self, queries: Sequence[str], k: int) -> list[list[tuple[int, float]]]:
        """Top-``k`` ``(row, score)`` per query, best first; documents sharing no term (score 0) are left out."""
        rows, scores = self.retriever.retrieve(self._tokens(queries), k=min(k, self.size), show_progress=False)
        return [[(int(r), float(s)) for r, s in zip(row, score) if s > 0] for row, score in zip(rows, scores)]

    def scores(self, query: str, rows: Sequence[int]) -> np.ndarray:
        """BM25 scores of ``query`` against the given rows."""
        return np.asarray(self.retriever.get_scores(self._tokens([query])[0]))[list(rows)]


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Hashable]], k: int = 60) -> list[tuple[Hashable, float]]:
    """Fuse ranked id lists: ``score(d) = sum over lists of 1 / (k + rank(d))`` with 1-based ranks.

    Ties are broken by first appearance (list order, then rank), so the result is deterministic.
    """
    fused: dict[Hashable, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, start=1):
            fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 / (k + rank)
    order = {doc_id: i for i, doc_id in enumerate(fused)}
    return sorted(fused.items(), key=lambda item: (-item[1], order[item[0]]))
