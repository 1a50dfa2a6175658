"""Lexical retrieval with ``bm25s`` (stemmed, stopwords removed), and reciprocal rank fusion."""

from __future__ import annotations

import json
import os
import shutil
from importlib.metadata import version as _version
from pathlib import Path
from typing import Hashable, Optional, Sequence

import numpy as np

from rerankforge.core.extras import require
from rerankforge.core.io import hash_strings
from rerankforge.retrieval.config import BM25Config


class BM25Index:
    """BM25 over a list of texts; ``search`` returns row indices into that list.

    Without ``cache_dir`` the index is built in memory. With it, the index is built once per (texts, config,
    bm25s and PyStemmer versions), saved with bm25s' ``BM25.save`` under ``cache_dir/bm25/corpus-<key>/`` and
    loaded with ``BM25.load(..., mmap=True)``: its score matrix is memory-mapped, not read into RAM. The saved
    vocabulary maps query tokens to the index's ids; the stemmer and stopwords that make those tokens are part of
    the key, so a loaded index ranks exactly as a freshly built one.

    Raises:
        ImportError: bm25s, or PyStemmer when ``config.stemmer`` is set, is missing (with the pip command).
    """

    def __init__(self, texts: Sequence[str], config: Optional[BM25Config] = None,
                 cache_dir: Optional[Path] = None):
        self.config = config or BM25Config()
        self._bm25s = require("bm25s", "BM25 retrieval")
        self.stemmer = None
        if self.config.stemmer:
            self.stemmer = require("Stemmer", f"BM25 with stemmer={self.config.stemmer}").Stemmer(self.config.stemmer)
        self.path = None if cache_dir is None else Path(cache_dir) / "bm25" / f"corpus-{self._key(texts)}"
        if self.path is not None and self.path.exists():
            self.retriever = self._bm25s.BM25.load(self.path, mmap=True)
        else:
            self.retriever = self._build(texts)
            if self.path is not None:
                self._save()
                self.retriever = self._bm25s.BM25.load(self.path, mmap=True)
        self.size = int(self.retriever.scores["num_docs"])

    def _key(self, texts: Sequence[str]) -> str:
        # a new bm25s or PyStemmer may tokenize or store differently: their versions are part of the key
        versions = [self._bm25s.__version__, _version("PyStemmer") if self.stemmer else ""]
        return hash_strings([json.dumps(vars(self.config), sort_keys=True), *versions, hash_strings(texts)])[:20]

    def _build(self, texts: Sequence[str]):
        retriever = self._bm25s.BM25(k1=self.config.k1, b=self.config.b)
        # bm25s' own tqdm bars (one line every ~10 s in a log: core/progress.py): a long corpus takes minutes
        retriever.index(self._bm25s.tokenize(list(texts), stopwords=self.config.stopwords, stemmer=self.stemmer,
                                             show_progress=True), show_progress=True)
        return retriever

    def _save(self) -> None:
        """Write the index to a scratch folder and rename it into place: a killed run leaves no partial index."""
        tmp = self.path.with_name(f".{self.path.name}.partial-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        self.retriever.save(tmp, show_progress=False)
        # the settings that made the vocabulary's tokens, for whoever inspects the cache
        (tmp / "tokenizer.json").write_text(json.dumps(vars(self.config), indent=2), encoding="utf-8")
        try:
            os.replace(tmp, self.path)
        except OSError:  # another process saved the same index first
            shutil.rmtree(tmp, ignore_errors=True)

    def _tokens(self, queries: Sequence[str]) -> list[list[str]]:
        return self._bm25s.tokenize(list(queries), stopwords=self.config.stopwords, stemmer=self.stemmer,
                                    show_progress=False, return_ids=False)

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
