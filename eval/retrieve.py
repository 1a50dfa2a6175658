"""The first stage of the pipeline: dense (FAISS over the data_prep embedding cache), BM25, or hybrid (RRF)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from rerankforge.data_prep.bm25 import BM25Index, reciprocal_rank_fusion
from rerankforge.eval.config import RetrieveConfig

Hits = list[tuple[str, float]]  # (doc_id, score), best first


class Retriever:
    """Retrieves doc ids for queries from a fixed corpus.

    Dense retrieval reuses the embedding cache and FAISS index that ``rerankforge mine`` wrote for the same model
    and corpus (same cache key), so nothing is encoded twice. Hybrid scores are the RRF scores.
    """

    def __init__(self, cfg: RetrieveConfig, doc_ids: Sequence[str], doc_texts: Sequence[str], cache_dir: Path):
        self.cfg = cfg
        self.doc_ids = list(doc_ids)
        self.encoder = self.index = self.bm25 = None
        if cfg.method in ("dense", "hybrid"):
            from rerankforge.data_prep.encode import cached_embeddings, load_encoder
            from rerankforge.data_prep.index import load_or_build_index

            self.encoder = load_encoder(cfg.encoder)
            docs, docs_file = cached_embeddings(self.encoder, list(doc_texts), "corpus", cache_dir,
                                                cfg.encoder.corpus_prompt)
            self.index = load_or_build_index(docs, docs_file, cfg.index)
        if cfg.method in ("bm25", "hybrid"):
            self.bm25 = BM25Index(doc_texts)

    def _dense(self, queries: Sequence[str], k: int) -> list[Hits]:
        from rerankforge.data_prep.index import search

        vectors = self.encoder.model.encode(list(queries), prompt=self.cfg.encoder.query_prompt,
                                            batch_size=self.cfg.encoder.batch_size, normalize_embeddings=True,
                                            convert_to_numpy=True, show_progress_bar=False)
        scores, rows = search(self.index, np.asarray(vectors, dtype=np.float32), k, show_progress=False)
        return [[(self.doc_ids[r], float(s)) for r, s in zip(rrow, srow) if r >= 0] for rrow, srow in zip(rows, scores)]

    def _bm25(self, queries: Sequence[str], k: int) -> list[Hits]:
        return [[(self.doc_ids[r], s) for r, s in hits] for hits in self.bm25.search(queries, k)]

    def search(self, queries: Sequence[str], k: int | None = None) -> list[Hits]:
        """Top-``k`` (default ``retrieve.top_k``) ``(doc_id, score)`` per query, best first."""
        k = k or self.cfg.top_k
        if self.cfg.method == "dense":
            return self._dense(queries, k)
        if self.cfg.method == "bm25":
            return self._bm25(queries, k)
        fused = []
        for dense, lexical in zip(self._dense(queries, k), self._bm25(queries, k)):
            ranked = reciprocal_rank_fusion([[d for d, _ in dense], [d for d, _ in lexical]], k=self.cfg.rrf_k)
            fused.append([(d, float(s)) for d, s in ranked[:k]])
        return fused
