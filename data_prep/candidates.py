"""First-stage candidates per query: dense (FAISS), BM25, or hybrid (RRF of both).

Each query gets candidate doc rows, best first, with their first-stage scores; ``Scorer`` scores any
other rows (positives, random easy negatives) on the same scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from rerankforge.data_prep.bm25 import BM25Index, reciprocal_rank_fusion
from rerankforge.data_prep.config import MineConfig
from rerankforge.data_prep.encode import Encoder, cached_embeddings
from rerankforge.data_prep.index import load_or_build_index, search

# (query position, corpus rows) -> first-stage scores of those rows
Scorer = Callable[[int, list[int]], np.ndarray]


@dataclass
class Candidates:
    """``rows[i]``/``scores[i]``: candidate corpus rows of query i, best first, and their scores.

    Arrays rather than lists: 1,000 candidates for each of 100k queries stay at ~1 GB instead of ~10 GB.
    """

    rows: list[np.ndarray]  # int64
    scores: list[np.ndarray]  # float32
    scorer: Scorer
    score_kind: str  # what the scores are: "cosine" or "bm25"


def _dense_embeddings(cfg: MineConfig, encoder: Encoder, doc_texts: list[str], query_texts: list[str], cache_dir):
    docs, docs_file = cached_embeddings(encoder, doc_texts, "corpus", cache_dir, cfg.encoder.corpus_prompt)
    queries, _ = cached_embeddings(encoder, query_texts, "queries", cache_dir, cfg.encoder.query_prompt)
    return docs, docs_file, np.asarray(queries)


def dense_candidates(cfg: MineConfig, encoder: Encoder, doc_texts: list[str], query_texts: list[str], k: int,
                     cache_dir) -> Candidates:
    docs, docs_file, queries = _dense_embeddings(cfg, encoder, doc_texts, query_texts, cache_dir)
    index = load_or_build_index(docs, docs_file, cfg.index)
    scores, ids = search(index, queries, k)
    rows = [irow[irow >= 0] for irow in ids]
    kept = [srow[irow >= 0] for srow, irow in zip(scores, ids)]

    def scorer(query: int, doc_rows: list[int]) -> np.ndarray:
        return np.asarray(docs[list(doc_rows)], dtype=np.float32) @ queries[query]

    return Candidates(rows, kept, scorer, "cosine")


def bm25_candidates(doc_texts: list[str], query_texts: list[str], k: int) -> Candidates:
    bm25 = BM25Index(doc_texts)
    hits = bm25.search(query_texts, k)
    return Candidates([np.array([r for r, _ in h], dtype=np.int64) for h in hits],
                      [np.array([s for _, s in h], dtype=np.float32) for h in hits],
                      lambda query, doc_rows: bm25.scores(query_texts[query], doc_rows), "bm25")


def hybrid_candidates(cfg: MineConfig, encoder: Encoder, doc_texts: list[str], query_texts: list[str], k: int,
                      cache_dir) -> Candidates:
    """Order by RRF of dense and BM25 ranks; scores are the dense cosines, so margins stay meaningful."""
    dense = dense_candidates(cfg, encoder, doc_texts, query_texts, k, cache_dir)
    lexical = bm25_candidates(doc_texts, query_texts, k)
    rows, scores = [], []
    for query, (d_rows, b_rows) in enumerate(zip(dense.rows, lexical.rows)):
        fused = [int(r) for r, _ in reciprocal_rank_fusion([d_rows.tolist(), b_rows.tolist()], k=cfg.mining.rrf_k)[:k]]
        rows.append(np.array(fused, dtype=np.int64))
        scores.append(dense.scorer(query, fused).astype(np.float32))
    return Candidates(rows, scores, dense.scorer, "cosine")


def first_stage(cfg: MineConfig, encoder: Optional[Encoder], doc_texts: list[str], query_texts: list[str], k: int,
                cache_dir) -> Candidates:
    kind = cfg.mining.candidates
    if kind == "bm25":
        return bm25_candidates(doc_texts, query_texts, k)
    if encoder is None:
        raise ValueError(f"mining.candidates={kind} needs a bi-encoder.")
    if kind == "hybrid":
        return hybrid_candidates(cfg, encoder, doc_texts, query_texts, k, cache_dir)
    return dense_candidates(cfg, encoder, doc_texts, query_texts, k, cache_dir)
