"""Reciprocal rank fusion by hand, and BM25 through bm25s, in memory or from its memory-mapped cache."""

import numpy as np
import pytest

from rerankforge.retrieval.bm25 import BM25Index, reciprocal_rank_fusion


def test_rrf_scores_by_hand_with_deterministic_ties():
    fused = dict(reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]], k=60))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["b"] == pytest.approx(1 / 62)
    # "x" and "y" tie (rank 1 in one list each): first appearance wins
    assert [d for d, _ in reciprocal_rank_fusion([["x"], ["y"]])] == ["x", "y"]


def test_bm25_ranks_the_document_sharing_the_rare_term_first():
    index = BM25Index(["the cat sat on the mat", "dogs chase cats", "protein folding in mice"])
    hits = index.search(["protein mice"], k=3)[0]
    assert hits[0][0] == 2 and all(row != 0 for row, _ in hits)  # no shared term: left out


WORDS = ("protein cell mouse gene cancer blood water fish bird cat dog folding running sleeps eats growth "
         "virus vaccine immune brain heart lung kidney liver bone muscle").split()


def random_texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 12)))) for _ in range(n)]


@pytest.fixture
def count_indexing(monkeypatch):
    import bm25s

    calls = []
    real = bm25s.BM25.index
    monkeypatch.setattr(bm25s.BM25, "index", lambda self, *a, **kw: calls.append(1) or real(self, *a, **kw))
    return calls


def test_bm25_cache_is_memory_mapped_and_ranks_exactly_as_in_memory(tmp_path, count_indexing):
    texts, queries = random_texts(300, seed=0), random_texts(20, seed=1)
    in_memory = BM25Index(texts)
    built = BM25Index(texts, cache_dir=tmp_path)
    loaded = BM25Index(texts, cache_dir=tmp_path)
    assert len(count_indexing) == 2  # in memory, then once for the cache; the third construction loads it
    assert [p.name for p in (tmp_path / "bm25").iterdir()] == [loaded.path.name]
    assert isinstance(loaded.retriever.scores["data"], np.memmap) and loaded.size == in_memory.size == 300
    expected = in_memory.search(queries, k=10)
    assert built.search(queries, k=10) == expected and loaded.search(queries, k=10) == expected
    assert any(expected)  # the queries share terms with the corpus: the comparison is not of empty lists
    rows = [0, 5, 17, 299]
    assert loaded.scores(queries[0], rows).tolist() == in_memory.scores(queries[0], rows).tolist()


def test_bm25_cache_misses_on_a_changed_corpus_or_config(tmp_path, count_indexing):
    from rerankforge.retrieval.config import BM25Config

    texts = random_texts(50, seed=0)
    BM25Index(texts, cache_dir=tmp_path)
    BM25Index(texts[:-1] + ["a changed last document"], cache_dir=tmp_path)
    BM25Index(texts, BM25Config(k1=1.2), cache_dir=tmp_path)
    BM25Index(texts, BM25Config(stemmer=None), cache_dir=tmp_path)
    BM25Index(texts, cache_dir=tmp_path)  # the first again: a hit
    assert len(count_indexing) == 4 and len(list((tmp_path / "bm25").iterdir())) == 4
    plain = BM25Index(texts, BM25Config(stemmer=None), cache_dir=tmp_path)
    assert len(count_indexing) == 4 and plain.search(["cats"], k=5)[0] == []  # its own, unstemmed vocabulary
