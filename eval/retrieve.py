"""The pipeline's first stage: ``data_prep.first_stage`` as the ``retrieve`` block of an eval config sets it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from rerankforge.data_prep.first_stage import FirstStage, FirstStageSpec, Hits
from rerankforge.eval.config import RetrieveConfig

__all__ = ["Hits", "Retriever", "retrieve_spec"]


def retrieve_spec(cfg: RetrieveConfig, method: Optional[str] = None) -> FirstStageSpec:
    return FirstStageSpec(method or cfg.method, cfg.encoder, cfg.index, cfg.bm25, cfg.rrf_k)


class Retriever:
    """Doc ids for queries from a fixed corpus. Dense retrieval reuses the embedding cache and FAISS index that
    ``rerankforge mine`` wrote for the same model and corpus, so nothing is encoded twice."""

    def __init__(self, cfg: RetrieveConfig, doc_ids: Sequence[str], doc_texts: Sequence[str], cache_dir: Path,
                 method: Optional[str] = None, encoder=None):
        self.cfg = cfg
        self.stage = FirstStage(retrieve_spec(cfg, method), doc_texts, cache_dir, encoder, doc_ids)

    @property
    def method(self) -> str:
        return self.stage.spec.method

    def search(self, queries: Sequence[str], k: Optional[int] = None) -> list[Hits]:
        """Top-``k`` (default ``retrieve.top_k``) ``(doc_id, score)`` per query, best first."""
        return self.stage.hits(queries, k or self.cfg.top_k)

    def search_all(self, queries: Sequence[str], k: Optional[int] = None) -> dict[str, list[Hits]]:
        """``search`` by every method the stage can run (a hybrid stage runs bm25, dense and hybrid)."""
        return self.stage.hits_all(queries, k or self.cfg.top_k)
