"""Long queries and documents through each API: Cohere's chunking (max pooling), TEI's 413 and truncation
direction, infinity's truncation; each scored like the in-process reranker with the same limits."""

from __future__ import annotations

import math

import httpx
import pytest
from conftest import QUERY, WORDS

from rerankforge.models.pairs import PairLimits

LONG_QUERY = " ".join(WORDS[i % len(WORDS)] for i in range(2000))  # 2,000 tokens (each word is one)
LONG_DOC = " ".join(WORDS[(7 * i) % len(WORDS)] for i in range(25000))[:100_000]  # 100 KB, ~20,000 tokens
# 406 one-token words, the query's words only at the end (after the first window); the tiny model happens to
# score the later windows above the first, so max pooling and truncation differ
CHUNKY_WORDS = [("food", "water", "eat", "eats", "run")[i % 5] for i in range(400)] + "the cat sat on the mat".split()
# 120 passage tokens fit after QUERY at max_length 128 (128 - 3 special - 5 query tokens): a text of two such
# halves, the query's words at its start and unrelated ones at its end
BUDGET = 128 - 3 - len(QUERY.split())
RELEVANT = ("the cat sat on the mat " * 20).split()[:BUDGET]
UNRELATED = [("protein", "blood", "gene", "virus", "heart")[i % 5] for i in range(BUDGET)]


def cohere_v1_limits(reranker, chunks=10):
    return PairLimits(max_length=reranker.max_length, max_query_length=64, max_windows=chunks)


def cohere_v2_limits(reranker, tokens=4096):
    return PairLimits(max_length=reranker.max_length, max_query_length=64, max_passage_tokens=tokens)


@pytest.mark.parametrize("api", ["cohere-v1", "cohere-v2", "tei-right", "tei-left", "infinity"])
def test_a_2000_token_query_and_a_100_kb_document_score_like_the_in_process_reranker(default_server, wide_reranker,
                                                                                   api):
    cohere = pytest.importorskip("cohere")
    docs = [LONG_DOC, "the cat sat on the mat"]
    if api == "cohere-v1":
        response = cohere.Client(api_key="unused", base_url=default_server.url).rerank(
            model="rerankforge", query=LONG_QUERY, documents=docs)
        got, limits = {r.index: r.relevance_score for r in response.results}, cohere_v1_limits(wide_reranker)
    elif api == "cohere-v2":
        response = cohere.ClientV2(api_key="unused", base_url=default_server.url).rerank(
            model="rerankforge", query=LONG_QUERY, documents=docs)
        got, limits = {r.index: r.relevance_score for r in response.results}, cohere_v2_limits(wide_reranker)
    elif api == "infinity":
        response = httpx.post(f"{default_server.url}/rerank", json={"query": LONG_QUERY, "documents": docs})
        assert response.status_code == 200, response.text
        got, limits = {r["index"]: r["relevance_score"] for r in response.json()["results"]}, wide_reranker.limits
    else:
        direction = api.split("-")[1]
        response = httpx.post(f"{default_server.url}/rerank", json={
            "query": LONG_QUERY, "texts": docs, "truncate": True, "truncation_direction": direction.capitalize()})
        assert response.status_code == 200, response.text
        got = {r["index"]: r["score"] for r in response.json()}
        limits = PairLimits(max_length=wide_reranker.max_length, max_query_length=64, direction=direction)
    assert all(math.isfinite(s) and 0 <= s <= 1 for s in got.values())
    expected = wide_reranker.score(LONG_QUERY, docs, limits=limits)
    assert [got[0], got[1]] == pytest.approx(expected, abs=1e-5)


def test_cohere_v2_scores_a_long_document_by_its_best_chunk(default_server, wide_reranker):
    cohere = pytest.importorskip("cohere")
    words, doc = CHUNKY_WORDS, " ".join(CHUNKY_WORDS)
    client = cohere.ClientV2(api_key="unused", base_url=default_server.url)
    got = client.rerank(model="rerankforge", query=QUERY, documents=[doc], max_tokens_per_doc=2000).results[0]
    maxp = wide_reranker.score(QUERY, [doc], limits=cohere_v2_limits(wide_reranker, 2000))[0]
    assert got.relevance_score == pytest.approx(maxp, abs=1e-5)
    # the same windows by hand: 128 - 3 special - 5 query tokens = 120 passage tokens each, 32 shared
    starts = range(0, len(words) - 32, BUDGET - 32)
    windows = [" ".join(words[start:start + BUDGET]) for start in starts]
    assert len(windows) == 5 and windows[-1].endswith("the cat sat on the mat")
    by_window = wide_reranker.score(QUERY, windows)
    assert maxp == pytest.approx(max(by_window), abs=1e-5)
    truncated = wide_reranker.score(QUERY, [doc])[0]
    assert truncated == pytest.approx(by_window[0], abs=1e-5) and maxp > truncated + 1e-3
    first_tokens = client.rerank(model="rerankforge", query=QUERY, documents=[doc], max_tokens_per_doc=20)
    assert first_tokens.results[0].relevance_score == pytest.approx(
        wide_reranker.score(QUERY, [" ".join(words[:20])])[0], abs=1e-5)


def test_cohere_v1_max_chunks_per_doc_limits_the_chunks(default_server, wide_reranker):
    doc, got = " ".join(CHUNKY_WORDS), {}
    for chunks in (1, 2, 20, None):
        extra = {} if chunks is None else {"max_chunks_per_doc": chunks}
        body = httpx.post(f"{default_server.url}/v1/rerank", json={"query": QUERY, "documents": [doc], **extra}).json()
        got[chunks] = body["results"][0]["relevance_score"]
        expected = wide_reranker.score(QUERY, [doc], limits=cohere_v1_limits(wide_reranker, chunks or 10))[0]
        assert got[chunks] == pytest.approx(expected, abs=1e-5)
    assert got[1] == pytest.approx(wide_reranker.score(QUERY, [doc])[0], abs=1e-6)  # one chunk: truncation
    assert got[20] == pytest.approx(got[None], abs=1e-6) and got[20] > got[1] + 1e-3  # 5 chunks: all of them


def test_tei_without_truncate_413s_naming_the_text_its_tokens_and_the_limit(default_server, wide_reranker):
    long_text = " ".join(WORDS[i % len(WORDS)] for i in range(300))
    response = httpx.post(f"{default_server.url}/rerank", json={"query": QUERY, "texts": ["the cat sat", long_text]})
    tokens = len(wide_reranker.tokenizer(QUERY, long_text)["input_ids"])
    assert response.status_code == 413
    assert response.json() == {"error": f"text 1 has {tokens} tokens with the query and special tokens, longer than "
                                        "the model's max_length=128 tokens; send truncate=true (or a shorter "
                                        "query/text).", "error_type": "Validation"}
    too_long_query = httpx.post(f"{default_server.url}/rerank", json={"query": LONG_QUERY, "texts": ["the cat"]})
    assert too_long_query.status_code == 413 and "text 0 has" in too_long_query.json()["error"]
    null = httpx.post(f"{default_server.url}/rerank", json={"query": QUERY, "texts": [long_text], "truncate": None})
    assert null.status_code == 413  # TEI's null truncate is its default, false


def tei_scores(url: str, text: str, direction: str) -> float:
    body = httpx.post(f"{url}/rerank", json={"query": QUERY, "texts": [text], "truncate": True, "raw_scores": True,
                                             "truncation_direction": direction}).json()
    return body[0]["score"]


def test_truncation_direction_keeps_the_start_or_the_end_of_a_long_text(default_server, wide_reranker):
    start_relevant = " ".join(RELEVANT + UNRELATED)
    end_relevant = " ".join(UNRELATED + RELEVANT)
    relevant, unrelated = wide_reranker.score(QUERY, [" ".join(RELEVANT), " ".join(UNRELATED)], raw=True)
    assert abs(relevant - unrelated) > 1e-2  # the two halves score apart, so the kept half shows in the score
    for direction in ("Right", "right", "RIGHT"):  # Right: the right end is cut, the start is kept
        assert tei_scores(default_server.url, start_relevant, direction) == pytest.approx(relevant, abs=1e-5)
        assert tei_scores(default_server.url, end_relevant, direction) == pytest.approx(unrelated, abs=1e-5)
    for direction in ("Left", "left"):  # Left: the left end is cut, the end is kept
        assert tei_scores(default_server.url, start_relevant, direction) == pytest.approx(unrelated, abs=1e-5)
        assert tei_scores(default_server.url, end_relevant, direction) == pytest.approx(relevant, abs=1e-5)
