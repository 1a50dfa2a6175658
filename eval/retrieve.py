"""The pipeline's first stage: ``retrieval.first_stage`` over documents, as an eval config's ``first_stage`` and
``retrieve.top_k`` set it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from rerankforge.retrieval.chunking import Documents
from rerankforge.retrieval.config import FirstStageConfig
from rerankforge.retrieval.corpus_store import row_finder
from rerankforge.retrieval.first_stage import FirstStage, Hits

__all__ = ["Hits", "Retriever"]


class Retriever:
    """Doc ids for queries from a fixed corpus. Dense retrieval reuses the embedding cache and FAISS index that
    ``rerankforge mine`` wrote for the same model and corpus, so nothing is encoded twice.

    With ``documents`` (a chunked corpus) the stage searches passages and returns documents, each scored from its
    retrieved passages by ``documents.aggregate`` (MaxP, FirstP or sum); ``k`` then counts documents."""

    def __init__(self, spec: FirstStageConfig, top_k: int, doc_ids: Sequence[str], doc_texts: Sequence[str],
                 cache_dir: Path, encoder=None, documents: Optional[Documents] = None):
        self.top_k, self.documents = top_k, documents
        self.stage = FirstStage(spec, doc_texts, cache_dir, encoder, doc_ids)
        self._row_of = None  # doc id -> row, built when first needed

    def _passages(self, k: int) -> int:
        return k if self.documents is None else self.documents.fetch_depth(k)

    def _pool(self, hits: list[Hits], k: int) -> list[Hits]:
        return hits if self.documents is None else [self.documents.pool_hits(h, k) for h in hits]

    @property
    def method(self) -> str:
        return self.stage.spec.method

    def similarity(self, query: str, doc_ids: Sequence[str]) -> list[float]:
        """The first stage's similarity of each of ``doc_ids`` (passages, in a chunked corpus) to ``query``."""
        if self._row_of is None:
            self._row_of = row_finder(self.stage.doc_ids)
        return self.stage.similarity(query, [self._row_of(d) for d in doc_ids]).tolist()

    def search(self, queries: Sequence[str], k: Optional[int] = None) -> list[Hits]:
        """Top-``k`` (default ``top_k``) ``(doc_id, score)`` per query, best first."""
        k = k or self.top_k
        return self._pool(self.stage.hits(queries, self._passages(k)), k)

    def search_all(self, queries: Sequence[str], k: Optional[int] = None) -> dict[str, list[Hits]]:
        """``search`` by every method the stage can run (a hybrid stage runs bm25, dense and hybrid)."""
        k = k or self.top_k
        return {method: self._pool(hits, k) for method, hits in self.stage.hits_all(queries, self._passages(k)).items()}
