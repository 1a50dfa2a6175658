"""The HTTP server on a real loopback port: Cohere (httpx and the official SDK) and TEI shapes, limits, auth,
micro-batching (and failure isolation), long queries and documents, and the pipeline endpoint."""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import threading
import time

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from conftest import DOCS, QUERY, WORDS, with_fusion  # noqa: E402
from rerankforge.eval.serve import MicroBatcher, ServeConfig, create_app  # noqa: E402
from rerankforge.models.pairs import PairLimits  # noqa: E402
from rerankforge.models.reranker import Reranker  # noqa: E402

LONG_QUERY = " ".join(WORDS[i % len(WORDS)] for i in range(2000))  # 2,000 tokens (each word is one)
LONG_DOC = " ".join(WORDS[(7 * i) % len(WORDS)] for i in range(25000))[:100_000]  # 100 KB, ~20,000 tokens
# 406 one-token words, the query's words only at the end (after the first window); the tiny model happens to
# score the later windows above the first, so max pooling and truncation differ
CHUNKY_WORDS = [("food", "water", "eat", "eats", "run")[i % 5] for i in range(400)] + "the cat sat on the mat".split()


class LiveServer:
    """uvicorn in a thread on a free 127.0.0.1 port; stopped by the fixture."""

    def __init__(self, app):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start in 30 s")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def reranker(tiny_cross_encoder):
    return Reranker(tiny_cross_encoder, device="cpu", max_length=48)


def start(reranker, **settings):
    return LiveServer(create_app(ServeConfig(model="tiny", max_length=48, **settings), reranker=reranker))


@pytest.fixture(scope="module")
def server(reranker):
    live = start(reranker, max_documents=5, max_document_chars=200, max_body_bytes=4000)
    yield live
    live.stop()


def test_cohere_v2_rerank_matches_the_in_process_reranker(server, reranker):
    body = httpx.post(f"{server.url}/v2/rerank", json={"model": "x", "query": QUERY, "documents": DOCS, "top_n": 2}).json()
    expected = reranker.rerank(QUERY, DOCS, top_n=2)
    assert [r["index"] for r in body["results"]] == [r["index"] for r in expected]
    assert [r["relevance_score"] for r in body["results"]] == pytest.approx([r["relevance_score"] for r in expected], abs=1e-6)
    assert body["id"] and body["meta"]["api_version"]["version"] == "2"


def test_official_cohere_sdk_gets_the_same_order_and_scores(server, reranker):
    cohere = pytest.importorskip("cohere")
    client = cohere.ClientV2(api_key="unused", base_url=server.url)
    response = client.rerank(model="rerankforge", query=QUERY, documents=DOCS, top_n=3)
    expected = reranker.rerank(QUERY, DOCS)
    assert [r.index for r in response.results] == [r["index"] for r in expected]
    assert [r.relevance_score for r in response.results] == pytest.approx([r["relevance_score"] for r in expected], abs=1e-6)


def test_cohere_v1_accepts_text_objects_and_returns_documents(server):
    body = httpx.post(f"{server.url}/v1/rerank", json={"query": QUERY, "documents": [{"text": d} for d in DOCS],
                                                       "return_documents": True}).json()
    assert sorted(r["index"] for r in body["results"]) == [0, 1, 2]
    assert all(r["document"]["text"] == DOCS[r["index"]] for r in body["results"])


def test_tei_rerank_raw_scores_are_the_logits(server, reranker):
    body = httpx.post(f"{server.url}/rerank", json={"query": QUERY, "texts": DOCS, "raw_scores": True,
                                                    "return_text": True}).json()
    logits = reranker.score(QUERY, DOCS, raw=True)
    assert [r["score"] for r in body] == pytest.approx(sorted(logits, reverse=True), abs=1e-6)
    assert body[0]["text"] == DOCS[body[0]["index"]]


@pytest.mark.parametrize("path, payload, status, message", [
    ("/v2/rerank", {"query": "  ", "documents": DOCS}, 422, "query is empty"),
    ("/v2/rerank", {"query": QUERY, "documents": []}, 422, "documents is empty"),
    ("/v2/rerank", {"query": QUERY, "documents": DOCS, "top_n": 4}, 422, "top_n=4 is out of range: expected 1 <= top_n <= 3"),
    ("/v2/rerank", {"query": QUERY, "documents": DOCS, "top_n": 0}, 422, "top_n=0 is out of range"),
    ("/v2/rerank", {"query": QUERY, "documents": ["d"] * 6}, 413, "6 documents sent; this server takes at most max_documents=5"),
    ("/v2/rerank", {"query": QUERY, "documents": ["x" * 201]}, 413, "document 0 has 201 characters; the limit is max_document_chars=200"),
    ("/v2/rerank", {"query": QUERY, "documents": DOCS, "pad": "z" * 4000}, 413, "max_body_bytes=4000"),
    ("/v2/rerank", {"documents": DOCS}, 422, "query: Field required"),
    ("/rerank", {"query": QUERY, "texts": ["cat " * 45]}, 413, "longer than the model's max_length=48 tokens"),
    ("/rerank", {"query": QUERY, "texts": DOCS, "truncation_direction": "middle"}, 422,
     "truncation_direction: Input should be 'Right' or 'Left'"),
])
def test_bad_requests_get_their_status_and_a_message_naming_the_problem(server, path, payload, status, message):
    response = httpx.post(server.url + path, json=payload)
    assert response.status_code == status
    assert message in response.json()["message"]


def test_wrong_or_missing_token_is_401(reranker, monkeypatch):
    monkeypatch.setenv("RF_TOKEN", "s3cret")
    live = start(reranker, token_env="RF_TOKEN")
    try:
        payload = {"query": QUERY, "documents": DOCS}
        assert httpx.post(f"{live.url}/v2/rerank", json=payload).status_code == 401
        wrong = httpx.post(f"{live.url}/v2/rerank", json=payload, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "bearer token" in wrong.json()["message"]
        ok = httpx.post(f"{live.url}/v2/rerank", json=payload, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
    finally:
        live.stop()


def test_health_openapi_and_default_loopback_bind(server):
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert {"/v1/rerank", "/v2/rerank", "/rerank", "/v1/query", "/health"} <= set(paths)
    assert ServeConfig().host == "127.0.0.1"
    assert httpx.post(f"{server.url}/v1/query", json={"query": "x"}).status_code == 404


def test_concurrent_requests_share_forward_passes():
    calls = []

    def score_pairs(pairs, limits):
        calls.append(len(pairs))
        return [float(len(d)) for _, d in pairs]

    async def main(enabled):
        batcher = MicroBatcher(score_pairs, wait_ms=50, enabled=enabled)
        results = await asyncio.gather(*(batcher.score([("q", "a" * i), ("q", "b")]) for i in range(1, 9)))
        batcher.close()
        return results, batcher.calls

    results, forward_calls = asyncio.run(main(True))
    assert results == [[float(i), 1.0] for i in range(1, 9)]  # each request gets its own scores back
    assert forward_calls < 8 and sum(calls) == 16
    calls.clear()
    assert asyncio.run(main(False))[1] == 8


def test_query_endpoint_runs_retrieve_rerank_generate(reranker, beir_dir, tiny_encoder, tiny_cross_encoder, tmp_path):
    from rerankforge.eval.config import EvalConfig
    from rerankforge.eval.pipeline import Pipeline
    from rerankforge.utils.config import load_config

    cfg = load_config(EvalConfig, None, [
        f"data.path={beir_dir}", "retrieve.top_k=8", f"retrieve.encoder.name_or_path={tiny_encoder}",
        "rerankers={none: {model: null}, tiny: {model: " + tiny_cross_encoder + ", depth: 4, max_length: 48}}",
        f"generate.token_counter={tiny_encoder}", "generate.top_n=2", f"cache_dir={tmp_path / 'cache'}"])
    pipeline = Pipeline.from_config(cfg)
    live = LiveServer(create_app(ServeConfig(model="tiny", max_length=48), reranker=reranker, pipeline=pipeline))
    try:
        body = httpx.post(f"{live.url}/v1/query", json={"query": "cat sat protein"}).json()
        assert body["reranker"] == "tiny" and len(body["passages"]) == 2 and body["answer"] is not None
        assert body["passages"] == pipeline.query("cat sat protein")["passages"]
        bad = httpx.post(f"{live.url}/v1/query", json={"query": "x", "reranker": "nope"})
        assert bad.status_code == 422 and "choose one of none, tiny" in bad.json()["message"]
    finally:
        live.stop()


def test_query_endpoint_applies_the_fitted_fusion_weight(reranker, beir_dir, tiny_encoder, tiny_cross_encoder,
                                                        tmp_path):
    from rerankforge.eval.config import EvalConfig
    from rerankforge.eval.pipeline import Pipeline
    from rerankforge.utils.config import load_config

    model = with_fusion(tiny_cross_encoder, tmp_path / "fused-model", "rrf", 0.4)
    cfg = load_config(EvalConfig, None, [
        f"data.path={beir_dir}", "retrieve.top_k=8", f"retrieve.encoder.name_or_path={tiny_encoder}",
        "rerankers={tiny: {model: " + model + ", depth: 6, max_length: 48, fusion: {method: auto}}}",
        "generate.kind=none", "generate.top_n=3", f"cache_dir={tmp_path / 'cache'}"])
    pipeline = Pipeline.from_config(cfg)
    live = LiveServer(create_app(ServeConfig(model="tiny", max_length=48), reranker=reranker, pipeline=pipeline))
    try:
        body = httpx.post(f"{live.url}/v1/query", json={"query": "cat sat protein"}).json()
    finally:
        live.stop()
    assert body["fusion"] == {"method": "rrf", "alpha": 0.4}
    hits = pipeline.retriever.search(["cat sat protein"])[0]
    expected = pipeline.rerank("tiny", "cat sat protein", hits)
    assert [p["doc_id"] for p in body["passages"]] == expected.passing[:3]
    assert expected.alone is not None


def test_openvino_backend_serves_the_same_scores(tiny_cross_encoder, reranker):
    pytest.importorskip("openvino")
    live = LiveServer(create_app(ServeConfig(model=tiny_cross_encoder, max_length=48, backend="openvino", device="cpu")))
    try:
        got = httpx.post(f"{live.url}/rerank", json={"query": QUERY, "texts": DOCS, "raw_scores": True}).json()
    finally:
        live.stop()
    expected = reranker.score(QUERY, DOCS, raw=True)
    assert {r["index"]: r["score"] for r in got} == pytest.approx(dict(enumerate(expected)), abs=1e-4)


def test_micro_batcher_scores_each_limits_group_apart_and_a_failure_only_fails_its_request():
    calls = []
    truncate, windows = PairLimits(max_length=48), PairLimits(max_length=48, max_passage_tokens=100)

    def score_pairs(pairs, limits):
        calls.append((len(pairs), limits))
        if any(d == "bad" for _, d in pairs):
            raise RuntimeError("bad pair")
        return [float(len(d)) + (0.5 if limits == windows else 0.0) for _, d in pairs]

    async def main():
        batcher = MicroBatcher(score_pairs, wait_ms=100)
        requests = [([("q", "aa"), ("q", "b")], truncate), ([("q", "ccc")], windows), ([("q", "bad")], truncate),
                    ([("q", "dddd")], truncate)]
        results = await asyncio.gather(*(batcher.score(p, lim) for p, lim in requests), return_exceptions=True)
        after = await batcher.score([("q", "eeeee")], windows)  # the worker lives on
        batcher.close()
        return results, after

    results, after = asyncio.run(main())
    assert results[0] == [2.0, 1.0] and results[1] == [3.5] and results[3] == [4.0] and after == [5.5]
    assert isinstance(results[2], RuntimeError) and "bad pair" in str(results[2])
    # one call per limits in the shared window; the failed truncate call (3 requests) retried one request at a time
    assert calls == [(4, truncate), (2, truncate), (1, truncate), (1, truncate), (1, windows), (1, windows)]


@pytest.fixture(scope="module")
def wide_reranker(tiny_cross_encoder):
    """The tiny model at its full 128 positions: room for windows of 60+ passage tokens after a long query."""
    return Reranker(tiny_cross_encoder, device="cpu", max_length=128)


@pytest.fixture(scope="module")
def default_server(wide_reranker):
    """Every limit at its default (a 100 KB document must pass)."""
    live = LiveServer(create_app(ServeConfig(model="tiny", max_length=128), reranker=wide_reranker))
    yield live
    live.stop()


def cohere_v1_limits(reranker, chunks=10):
    return PairLimits(max_length=reranker.max_length, max_query_length=64, max_windows=chunks)


def cohere_v2_limits(reranker, tokens=4096):
    return PairLimits(max_length=reranker.max_length, max_query_length=64, max_passage_tokens=tokens)


@pytest.mark.parametrize("api", ["cohere-v1", "cohere-v2", "tei-right", "tei-left"])
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
    budget = 128 - 3 - len(QUERY.split())
    starts = range(0, len(words) - 32, budget - 32)
    windows = [" ".join(words[start:start + budget]) for start in starts]
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


def test_tei_without_truncate_413s_naming_the_text_and_direction_picks_start_or_end(default_server, wide_reranker):
    long_text = " ".join(WORDS[i % len(WORDS)] for i in range(300))
    texts = ["the cat sat", long_text]
    response = httpx.post(f"{default_server.url}/rerank", json={"query": QUERY, "texts": texts})
    tokens = len(wide_reranker.tokenizer(QUERY, long_text)["input_ids"])
    assert response.status_code == 413
    assert f"text 1 has {tokens} tokens" in response.json()["message"]
    assert "max_length=128" in response.json()["message"]
    too_long_query = httpx.post(f"{default_server.url}/rerank", json={"query": LONG_QUERY, "texts": ["the cat"]})
    assert too_long_query.status_code == 413 and "text 0 has" in too_long_query.json()["message"]
    scores = {}
    for direction in ("Right", "Left", "left", "RIGHT"):
        body = httpx.post(f"{default_server.url}/rerank", json={"query": QUERY, "texts": texts, "truncate": True,
                                                                "truncation_direction": direction,
                                                                "raw_scores": True}).json()
        scores[direction] = {r["index"]: r["score"] for r in body}
    for direction in ("right", "left"):
        limits = PairLimits(max_length=128, max_query_length=64, direction=direction)
        expected = wide_reranker.score(QUERY, texts, raw=True, limits=limits)
        assert [scores[direction.capitalize()][i] for i in (0, 1)] == pytest.approx(expected, abs=1e-5)
    assert scores["left"] == scores["Left"] and scores["RIGHT"] == scores["Right"]
    assert abs(scores["Left"][1] - scores["Right"][1]) > 1e-4


def test_one_failing_request_in_a_micro_batch_gets_500_and_the_others_their_scores(reranker, monkeypatch, caplog):
    original, calls = reranker.score_pairs, []

    def flaky(pairs, raw=False, limits=None):
        calls.append({d for _, d in pairs})
        if any("poison" in d for _, d in pairs):
            raise RuntimeError("poison pair")
        return original(pairs, raw=raw, limits=limits)

    monkeypatch.setattr(reranker, "score_pairs", flaky)
    live = start(reranker, batch_wait_ms=300)
    queries = [f"{w} sat on the mat" for w in ("cat", "dog", "fish", "bird", "mouse")]

    async def send():
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
            good = [client.post("/v2/rerank", json={"query": q, "documents": DOCS}) for q in queries]
            bad = client.post("/v2/rerank", json={"query": QUERY, "documents": DOCS + ["poison"]})
            return await asyncio.gather(bad, *good)

    try:
        with caplog.at_level(logging.ERROR, logger="rerankforge.serve"):
            bad, *good = asyncio.run(send())
        after = httpx.post(f"{live.url}/v2/rerank", json={"query": QUERY, "documents": DOCS})
    finally:
        live.stop()
    assert bad.status_code == 500 and "RuntimeError" in bad.json()["message"]
    assert "poison pair" in caplog.text and "Traceback" in caplog.text
    for q, response in zip(queries, good):
        assert response.status_code == 200
        expected = dict(enumerate(reranker.score(q, DOCS, limits=cohere_v2_limits(reranker))))
        assert {r["index"]: r["relevance_score"] for r in response.json()["results"]} == pytest.approx(expected,
                                                                                                       abs=1e-6)
    assert len(calls[0]) == len(DOCS) + 1  # the first call was shared: the bad request with good ones
    assert after.status_code == 200 and len(after.json()["results"]) == 3


def test_an_unexpected_error_is_a_json_500_not_a_dropped_connection(reranker, monkeypatch):
    def broken(pairs, raw=False, limits=None):
        raise ValueError("model exploded")

    monkeypatch.setattr(reranker, "score_pairs", broken)
    live = start(reranker, micro_batching=False)
    try:
        response = httpx.post(f"{live.url}/rerank", json={"query": QUERY, "texts": DOCS})
    finally:
        live.stop()
    assert response.status_code == 500
    assert response.json() == {"message": "internal server error (ValueError); the server logged the traceback."}


def test_default_limits_take_a_100_kb_document():
    cfg = ServeConfig()
    assert cfg.max_document_chars >= 100_000 and cfg.max_body_bytes >= 200_000
