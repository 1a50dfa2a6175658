"""The first stage, one implementation for mining, training's dev set, eval and serve.

``dense``: a sentence-transformers bi-encoder over FAISS (embeddings and index cached on disk, so every stage
that uses the same model and corpus encodes it once). ``bm25``: bm25s with stemming and stopwords.
``hybrid``: reciprocal rank fusion of the two rankings, each taken ``k`` deep.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from rerankforge.core import distributed
from rerankforge.retrieval import encode
from rerankforge.retrieval.bm25 import BM25Index, reciprocal_rank_fusion
from rerankforge.retrieval.config import FirstStageConfig
from rerankforge.retrieval.encode import cached_embeddings
from rerankforge.retrieval.index import load_or_build_index, search

METHODS = ("dense", "bm25", "hybrid")
Hits = list[tuple[str, float]]  # (doc_id, score), best first
# (query position, corpus rows) -> similarity of those rows on the scale margins are measured in
Scorer = Callable[[int, Sequence[int]], np.ndarray]


@dataclass
class Candidates:
    """``rows[i]``/``scores[i]``: candidate corpus rows of query i, best first, and their first-stage scores.

    ``score_kind`` says what the scores are: "cosine", "bm25" or "rrf". ``similarity`` scores any rows of a query
    on a scale where margins mean something: cosine when there is a bi-encoder, else BM25. Arrays rather than
    lists: 1,000 candidates for each of 100k queries stay at ~1 GB instead of ~10 GB.
    """

    rows: list[np.ndarray]  # int64
    scores: list[np.ndarray]  # float32
    similarity: Scorer
    score_kind: str


def _as_arrays(hits: list[list[tuple[int, float]]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    return ([np.array([r for r, _ in h], dtype=np.int64) for h in hits],
            [np.array([s for _, s in h], dtype=np.float32) for h in hits])


class FirstStage:
    """Retrieves corpus rows for queries from a fixed corpus with ``spec.method`` (a named one, not ``auto``).

    ``encoder`` (a loaded ``retrieval.encode.Encoder``) may be passed in to share one with the caller; otherwise
    it is loaded from ``spec.encoder`` when the method needs it. ``doc_ids`` name the rows in ``hits``.
    """

    def __init__(self, spec: FirstStageConfig, doc_texts: Sequence[str], cache_dir: Path, encoder=None,
                 doc_ids: Optional[Sequence[str]] = None):
        if spec.method not in METHODS:
            raise ValueError(f"first-stage method must be one of {list(METHODS)}, got {spec.method!r}.")
        self.spec, self.cache_dir = spec, Path(cache_dir)
        self.doc_ids = doc_ids  # a list, or an Arrow id column (corpus_store.IdColumn)
        self.encoder = self.index = self.docs = self.bm25 = None
        if spec.method in ("dense", "hybrid"):
            self.encoder = encoder or encode.load_encoder(spec.encoder)
            self.docs, docs_file = cached_embeddings(self.encoder, doc_texts, "corpus", self.cache_dir,
                                                     self.encoder.config.corpus_prompt)
            with distributed.main_first():  # under accelerate launch the main process builds and saves it
                self.index = load_or_build_index(self.docs, docs_file, spec.index)
        if spec.method in ("bm25", "hybrid"):
            with distributed.main_first():
                self.bm25 = BM25Index(doc_texts, spec.bm25, cache_dir=self.cache_dir)

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """L2-normalised query vectors; a batch larger than one encoder batch goes through the disk cache."""
        prompt = self.encoder.config.query_prompt
        if len(queries) > self.encoder.config.batch_size:
            return np.asarray(cached_embeddings(self.encoder, list(queries), "queries", self.cache_dir, prompt)[0])
        with self.encoder.query_precision():
            vectors = self.encoder.model.encode(list(queries), prompt=prompt,
                                                batch_size=self.encoder.config.batch_size, normalize_embeddings=True,
                                                convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def similarity(self, query: str, rows: Sequence[int], vector: Optional[np.ndarray] = None) -> np.ndarray:
        """The similarity of corpus ``rows`` to ``query``: cosine where the stage has a bi-encoder (``vector``: the
        query's, when already encoded), else BM25; the scale of ``Candidates.similarity``."""
        if self.encoder is not None:
            return self.cosine(self.encode_queries([query])[0] if vector is None else vector, rows)
        return self.bm25.scores(query, rows).astype(np.float32)

    def cosine(self, vector: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        """Cosine of corpus ``rows`` to a query ``vector`` (``encode_queries``)."""
        return np.asarray(self.docs[list(rows)], dtype=np.float32) @ vector

    def _dense(self, vectors: np.ndarray, k: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        scores, ids = search(self.index, vectors, k, show_progress=len(vectors) > 1000)
        return [irow[irow >= 0] for irow in ids], [srow[irow >= 0] for srow, irow in zip(scores, ids)]

    def search_all(self, queries: Sequence[str], k: int, methods: Sequence[str] = METHODS) -> dict[str, Candidates]:
        """Each of ``methods`` this stage can run (a ``hybrid`` stage runs all three), by name, each top-``k``.
        Dense and hybrid candidates measure similarity by cosine, BM25 candidates by BM25."""
        needs_dense = "dense" in methods or "hybrid" in methods
        needs_bm25 = "bm25" in methods or "hybrid" in methods
        vectors = self.encode_queries(queries) if self.encoder is not None and needs_dense else None
        out = {}
        if vectors is not None:
            out["dense"] = Candidates(*self._dense(vectors, k), lambda query, rows: self.cosine(vectors[query], rows),
                                      "cosine")
        if self.bm25 is not None and needs_bm25:
            def lexical(query: int, rows: Sequence[int]) -> np.ndarray:
                return self.bm25.scores(queries[query], rows).astype(np.float32)

            out["bm25"] = Candidates(*_as_arrays(self.bm25.search(queries, k)), lexical, "bm25")
        if len(out) == 2:
            fused = [reciprocal_rank_fusion([d.tolist(), b.tolist()], k=self.spec.rrf_k)[:k]
                     for d, b in zip(out["dense"].rows, out["bm25"].rows)]
            out["hybrid"] = Candidates(*_as_arrays(fused), out["dense"].similarity, "rrf")
        return {method: out[method] for method in methods if method in out}

    def search(self, queries: Sequence[str], k: int) -> Candidates:
        """The top-``k`` candidate rows of each query, best first, with their scores (the method's own scale)."""
        return self.search_all(queries, k, [self.spec.method])[self.spec.method]

    def hits_all(self, queries: Sequence[str], k: int, methods: Sequence[str] = METHODS) -> dict[str, list[Hits]]:
        """``search_all`` with doc ids: ``{method: [[(doc_id, score), ...] per query]}``, best first."""
        if self.doc_ids is None:
            raise ValueError("FirstStage.hits needs the doc ids the corpus rows stand for: pass doc_ids= to "
                             "FirstStage.")
        return {method: [[(self.doc_ids[r], float(s)) for r, s in zip(rows, scores)]
                         for rows, scores in zip(cands.rows, cands.scores)]
                for method, cands in self.search_all(queries, k, methods).items()}

    def hits(self, queries: Sequence[str], k: int) -> list[Hits]:
        """``search`` with doc ids: ``[(doc_id, score), ...]`` per query, best first."""
        return self.hits_all(queries, k, [self.spec.method])[self.spec.method]
