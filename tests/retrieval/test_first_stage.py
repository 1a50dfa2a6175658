"""The one first stage: stemmed BM25, dense, and hybrid as reciprocal rank fusion of exactly those two."""

import pytest

from rerankforge.retrieval.bm25 import BM25Index, reciprocal_rank_fusion
from rerankforge.retrieval.config import BM25Config, EncoderConfig, FirstStageConfig
from rerankforge.retrieval.first_stage import FirstStage

DOCS = ["the cat sat on the mat", "dogs chase a running cat", "protein folding in mice", "genes of the mouse",
        "a bird eats fish", "water for the blood cells"]


def test_bm25_stems_by_default_and_can_be_told_not_to():
    stemmed = BM25Index(DOCS)
    assert [r for r, _ in stemmed.search(["cats runs"], k=3)[0]][0] == 1  # cat + run
    plain = BM25Index(DOCS, BM25Config(stemmer=None))
    assert plain.search(["cats runs"], k=3)[0] == []  # no surface form matches


def test_missing_stemmer_names_the_pip_package(monkeypatch):
    import rerankforge.retrieval.bm25 as bm25

    real = bm25.require
    monkeypatch.setattr(bm25, "require", lambda module, purpose: real("no_such_module_x", purpose)
                        if module == "Stemmer" else real(module, purpose))
    with pytest.raises(ImportError, match="BM25 with stemmer=english needs"):
        BM25Index(DOCS)


def test_hybrid_is_rrf_of_dense_and_bm25(tiny_encoder, tmp_path):
    spec = FirstStageConfig("hybrid", EncoderConfig(name_or_path=tiny_encoder, batch_size=4), rrf_k=60)
    stage = FirstStage(spec, DOCS, tmp_path / "cache", doc_ids=[f"d{i}" for i in range(len(DOCS))])
    queries = ["cat on a mat", "mouse protein"]
    every = stage.search_all(queries, k=4)
    assert set(every) == {"dense", "bm25", "hybrid"} and every["dense"].score_kind == "cosine"
    for qi in range(len(queries)):
        expected = reciprocal_rank_fusion([every["dense"].rows[qi].tolist(), every["bm25"].rows[qi].tolist()])[:4]
        assert every["hybrid"].rows[qi].tolist() == [r for r, _ in expected]
        assert every["hybrid"].scores[qi].tolist() == pytest.approx([s for _, s in expected])
    hits = stage.hits(queries[:1], k=4)[0]
    assert [d for d, _ in hits] == [f"d{r}" for r in every["hybrid"].rows[0].tolist()]


def test_unknown_method_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"one of \['dense', 'bm25', 'hybrid'\], got 'splade'"):
        FirstStage(FirstStageConfig("splade"), DOCS, tmp_path)


def test_similarity_is_on_the_scale_of_each_method(tiny_encoder, tmp_path):
    spec = FirstStageConfig("hybrid", EncoderConfig(name_or_path=tiny_encoder, batch_size=4))
    every = FirstStage(spec, DOCS, tmp_path / "cache").search_all(["cat on a mat"], k=3)
    for method in ("dense", "bm25"):  # what mining compares margins with: the candidates' own scores
        cands = every[method]
        assert cands.similarity(0, cands.rows[0].tolist()).tolist() == pytest.approx(cands.scores[0].tolist(), abs=1e-5)
    assert every["hybrid"].similarity is every["dense"].similarity  # fused ranks carry no margin: cosine
