"""The HTTP server on a real loopback port: Cohere (httpx and the official SDK) and TEI shapes, limits, auth,
micro-batching, and the pipeline endpoint."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from conftest import DOCS, QUERY, with_fusion  # noqa: E402
from rerankforge.eval.serve import MicroBatcher, ServeConfig, create_app  # noqa: E402
from rerankforge.models.reranker import Reranker  # noqa: E402


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

    def score_pairs(pairs):
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
