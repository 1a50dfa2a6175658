"""Chunking documents into passages, and pooling passage scores into document scores."""

from __future__ import annotations

import pytest

from rerankforge.core.text import windows
from rerankforge.retrieval.chunking import Documents, chunk_corpus, chunk_text, pool
from rerankforge.retrieval.config import ChunkConfig


def test_chunk_text_by_chars_with_overlap():
    assert chunk_text("abcdefghij", ChunkConfig(size=4, overlap=1, unit="chars")) == ["abcd", "defg", "ghij"]
    assert chunk_text("abcdefghijk", ChunkConfig(size=4, overlap=1, unit="chars")) == ["abcd", "defg", "ghij",
                                                                                       "jk"]
    assert chunk_text("abc", ChunkConfig(size=4, overlap=1, unit="chars")) == ["abc"]
    assert chunk_text("", ChunkConfig(size=4, overlap=1, unit="chars")) == []


@pytest.mark.parametrize("length, size, overlap", [(0, 3, 1), (1, 3, 1), (3, 3, 1), (10, 3, 0), (10, 4, 3),
                                                   (11, 5, 2)])
def test_windows_cover_everything_with_the_overlap(length, size, overlap):
    got = windows(length, size, overlap)
    covered = sorted({i for s, e in got for i in range(s, e)})
    assert covered == list(range(length))
    assert all(e - s <= size for s, e in got)
    assert all(a[1] - b[0] == overlap for a, b in zip(got, got[1:]))


def test_chunk_text_by_tokens_keeps_original_text():
    def spans(text):  # whitespace tokens
        out, start = [], None
        for i, ch in enumerate(text + " "):
            if ch.isspace() and start is not None:
                out.append((start, i))
                start = None
            elif not ch.isspace() and start is None:
                start = i
        return out

    text = "One two,  three four five six"
    assert chunk_text(text, ChunkConfig(size=3, overlap=1), spans) == ["One two,  three", "three four five",
                                                                       "five six"]



def test_chunk_corpus_ids_map_back_to_their_documents():
    corpus = {"a#b": {"title": "T", "text": "abcdefghij"}, "short": {"title": "", "text": "xy"},
              "empty": {"title": "E", "text": ""}}
    passages, docs = chunk_corpus(corpus, ChunkConfig(size=4, overlap=1, unit="chars"))
    assert docs.chunks == {"a#b": ["a#b#0", "a#b#1", "a#b#2"], "short": ["short#0"], "empty": ["empty#0"]}
    assert passages["a#b#1"] == {"title": "T", "text": "defg"}
    assert passages["empty#0"] == {"title": "E", "text": ""}
    # a document id that itself contains '#' still maps back exactly
    assert {p: docs.document_of[p] for p in passages} == {"a#b#0": "a#b", "a#b#1": "a#b", "a#b#2": "a#b",
                                                         "short#0": "short", "empty#0": "empty"}


def test_pool_max_first_sum():
    assert pool([0.2, 0.9, 0.1], "max") == 0.9
    assert pool([0.2, 0.9, 0.1], "first") == 0.2
    assert pool([0.2, 0.9, 0.1], "sum") == pytest.approx(1.2)
    with pytest.raises(ValueError, match="aggregate must be one of"):
        pool([1.0], "mean")


def test_pool_hits_is_maxp_firstp_or_sum_per_document():
    chunks = {"d1": ["d1#0", "d1#1", "d1#2"], "d2": ["d2#0", "d2#1"], "d3": ["d3#0"]}
    hits = [("d1#2", 9.0), ("d2#0", 5.0), ("d3#0", 4.0), ("d2#1", 3.0), ("d1#0", 1.0)]
    assert Documents(chunks, "max").pool_hits(hits) == [("d1", 9.0), ("d2", 5.0), ("d3", 4.0)]
    assert Documents(chunks, "first").pool_hits(hits) == [("d2", 5.0), ("d3", 4.0), ("d1", 1.0)]
    assert Documents(chunks, "sum").pool_hits(hits) == [("d1", 10.0), ("d2", 8.0), ("d3", 4.0)]
    assert Documents(chunks, "max").pool_hits(hits, k=2) == [("d1", 9.0), ("d2", 5.0)]
    assert Documents(chunks, "first").scored("d1") == ["d1#0"] and Documents(chunks).scored("d2") == ["d2#0", "d2#1"]
    with pytest.raises(ValueError, match="data.chunking.aggregate must be one of"):
        Documents(chunks, "mean")


def test_document_metrics_equal_ir_measures_on_the_pooled_run():
    import ir_measures

    from rerankforge.core.metrics import evaluate_run

    chunks = {f"d{i}": [f"d{i}#{j}" for j in range(3)] for i in range(6)}
    hits = {"q1": [("d3#2", 0.9), ("d1#0", 0.8), ("d3#0", 0.7), ("d0#1", 0.5), ("d5#2", 0.4)],
            "q2": [("d2#1", 0.6), ("d4#0", 0.55), ("d2#0", 0.3)]}
    qrels = {"q1": {"d1": 1, "d5": 2}, "q2": {"d4": 1}}
    docs = Documents(chunks, "max")
    run = {q: dict(docs.pool_hits(h)) for q, h in hits.items()}
    assert run["q1"] == {"d3": 0.9, "d1": 0.8, "d0": 0.5, "d5": 0.4}
    ours = evaluate_run(qrels, run, ["ndcg@10", "mrr@10", "recall@10"])
    theirs = ir_measures.calc_aggregate([ir_measures.nDCG @ 10, ir_measures.RR @ 10, ir_measures.R @ 10], qrels, run)
    assert ours == pytest.approx({"ndcg@10": theirs[ir_measures.nDCG @ 10], "mrr@10": theirs[ir_measures.RR @ 10],
                                  "recall@10": theirs[ir_measures.R @ 10]})
    assert ours["mrr@10"] == pytest.approx((1 / 2 + 1 / 2) / 2)


def test_a_reranker_reads_the_passages_the_first_stage_finds_closest_in_text_order():
    from rerankforge.retrieval.chunking import Documents

    docs = Documents({"a": ["a#0", "a#1", "a#2", "a#3"], "b": ["b#0"]}, "max", read=2)
    similarity = {"a#0": 0.1, "a#1": 0.9, "a#2": 0.2, "a#3": 0.8, "b#0": 0.5}
    assert docs.to_read(["a", "b"], lambda ids: [similarity[p] for p in ids]) == {"a": ["a#1", "a#3"], "b": ["b#0"]}
    assert Documents(docs.chunks, "max").to_read(["a"], lambda ids: [0.0] * len(ids)) == {"a": docs.chunks["a"]}
    assert Documents(docs.chunks, "first", read=2).to_read(["a"], None) == {"a": ["a#0"]}
