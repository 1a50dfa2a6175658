"""Reciprocal rank fusion by hand, and BM25 through bm25s."""

import pytest

from rerankforge.data_prep.bm25 import BM25Index, reciprocal_rank_fusion


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
