"""infinity's /rerank shape (a body with ``documents``) through httpx: answers and error bodies."""

from __future__ import annotations

import time

import httpx
import pytest
from conftest import DOCS, QUERY


def test_infinity_body_gets_infinitys_rerank_result(server, reranker):
    before = int(time.time())
    response = httpx.post(f"{server.url}/rerank", json={"query": QUERY, "documents": DOCS, "top_n": 2,
                                                        "return_documents": True, "model": "tiny"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"object", "results", "model", "usage", "id", "created"}
    assert body["object"] == "rerank" and body["model"] == "tiny" and body["id"] and body["created"] >= before
    expected = reranker.rerank(QUERY, DOCS, top_n=2)
    assert [r["index"] for r in body["results"]] == [r["index"] for r in expected]
    assert [r["relevance_score"] for r in body["results"]] == pytest.approx(
        [r["relevance_score"] for r in expected], abs=1e-6)
    assert [r["document"] for r in body["results"]] == [DOCS[r["index"]] for r in expected]
    pairs = reranker.tokenizer([QUERY] * 3, DOCS)["input_ids"]
    assert body["usage"] == {"prompt_tokens": sum(map(len, pairs)), "total_tokens": sum(map(len, pairs))}


def test_infinity_defaults_raw_scores_and_a_top_n_past_the_documents(server, reranker):
    plain = httpx.post(f"{server.url}/rerank", json={"query": QUERY, "documents": DOCS}).json()
    assert len(plain["results"]) == 3 and all(r["document"] is None for r in plain["results"])
    raw = httpx.post(f"{server.url}/rerank", json={"query": QUERY, "documents": DOCS, "raw_scores": True,
                                                   "top_n": 10, "model": "default/not-specified"}).json()
    logits = reranker.score(QUERY, DOCS, raw=True)
    assert [r["relevance_score"] for r in raw["results"]] == pytest.approx(sorted(logits, reverse=True), abs=1e-6)
    assert raw["model"] == "tiny"


@pytest.mark.parametrize("payload, status, message", [
    ({"query": QUERY, "documents": []}, 422, "documents is empty: send at least one document."),
    ({"query": "  ", "documents": DOCS}, 422, "query is empty"),
    ({"query": QUERY, "documents": DOCS, "top_n": 0}, 422, "top_n: Input should be greater than 0"),
    ({"documents": DOCS}, 422, "query: Field required"),
    ({"query": QUERY, "documents": [{"text": "a"}]}, 422, "documents.0: Input should be a valid string"),
    ({"query": QUERY, "documents": ["d"] * 6}, 413, "6 documents sent; this server takes at most max_documents=5"),
    ({"query": QUERY, "documents": ["x" * 201]}, 413,
     "document 0 has 201 characters; the limit is max_document_chars=200"),
    ({"query": QUERY, "documents": DOCS, "model": "rerank-v3.5"}, 404,
     "model 'rerank-v3.5' is not served here; choose one of: tiny (or leave model out for the default, tiny)."),
])
def test_infinity_errors_are_openai_style_error_bodies(server, payload, status, message):
    response = httpx.post(f"{server.url}/rerank", json=payload)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(response.json()) == {"error"} and set(error) == {"message", "type", "param", "code"}
    assert message in error["message"] and error["code"] == status and error["type"] == "invalid_request_error"


def test_a_failing_model_is_an_infinity_500(reranker, serve_tiny, monkeypatch):
    def broken(pairs, raw=False, limits=None):
        raise ValueError("model exploded")

    monkeypatch.setattr(reranker, "score_pairs", broken)
    live = serve_tiny(reranker, micro_batching=False)
    response = httpx.post(f"{live.url}/rerank", json={"query": QUERY, "documents": DOCS})
    assert response.status_code == 500
    assert response.json() == {"error": {"message": "internal server error (ValueError); the server logged the "
                                                    "traceback.", "type": "server_error", "param": None, "code": 500}}
