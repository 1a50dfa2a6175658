"""The HTTP server on a real loopback port: Cohere (httpx and the official SDK) and TEI shapes, every error body of
both, auth, scores through the reranker's probability, and the pipeline endpoint."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from conftest import DOCS, QUERY, with_fusion

from rerankforge.models.pairs import PairLimits
from rerankforge.models.reranker import Reranker, sigmoid
from rerankforge.serve import ServeConfig, create_app


def cohere_v2_limits(reranker, tokens=4096):
    return PairLimits(max_length=reranker.max_length, max_query_length=64, max_passage_tokens=tokens)


def test_cohere_v2_rerank_matches_the_in_process_reranker(server, reranker):
    body = httpx.post(f"{server.url}/v2/rerank", json={"model": "x", "query": QUERY, "documents": DOCS, "top_n": 2}).json()
    expected = reranker.rerank(QUERY, DOCS, top_n=2)
    assert [r["index"] for r in body["results"]] == [r["index"] for r in expected]
    assert [r["relevance_score"] for r in body["results"]] == pytest.approx([r["relevance_score"] for r in expected], abs=1e-6)
    assert body["id"] and body["meta"]["api_version"]["version"] == "2"


def test_official_cohere_sdk_gets_the_same_order_and_scores(server, reranker):
    cohere = pytest.importorskip("cohere")
    client = cohere.ClientV2(api_key="unused", base_url=server.url)
    response = client.rerank(model="rerank-v3.5", query=QUERY, documents=DOCS, top_n=3)
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
    assert set(body[0]) == {"index", "score", "text"}


@pytest.mark.parametrize("path, payload, status, message", [
    ("/v2/rerank", {"query": "  ", "documents": DOCS}, 422, "query is empty"),
    ("/v2/rerank", {"query": QUERY, "documents": []}, 422, "documents is empty"),
    ("/v2/rerank", {"query": QUERY, "documents": DOCS, "top_n": 4}, 422, "top_n=4 is out of range: expected 1 <= top_n <= 3"),
    ("/v2/rerank", {"query": QUERY, "documents": DOCS, "top_n": 0}, 422, "top_n=0 is out of range"),
    ("/v2/rerank", {"query": QUERY, "documents": ["d"] * 6}, 413, "6 documents sent; this server takes at most max_documents=5"),
    ("/v2/rerank", {"query": QUERY, "documents": ["x" * 201]}, 413, "document 0 has 201 characters; the limit is max_document_chars=200"),
    ("/v2/rerank", {"query": QUERY, "documents": DOCS, "pad": "z" * 4000}, 413, "max_body_bytes=4000"),
    ("/v2/rerank", {"documents": DOCS}, 422, "query: Field required"),
    ("/v1/rerank", {"query": QUERY, "documents": DOCS, "max_chunks_per_doc": 0}, 422,
     "max_chunks_per_doc: Input should be greater than or equal to 1"),
    ("/v1/query", {"query": "x"}, 404, "no pipeline configured: start the server with --pipeline"),
])
def test_cohere_errors_are_a_message_naming_the_problem(server, path, payload, status, message):
    response = httpx.post(server.url + path, json=payload)
    assert response.status_code == status
    assert list(response.json()) == ["message"] and message in response.json()["message"]


def test_a_body_over_the_limit_names_its_size_and_the_limit(server):
    response = httpx.post(f"{server.url}/v2/rerank", json={"query": QUERY, "documents": DOCS, "pad": "z" * 4000})
    assert response.json()["message"] == (f"request body has {len(response.request.content)} bytes; the limit is "
                                           "max_body_bytes=4000.")


@pytest.mark.parametrize("payload, status, error_type, message", [
    ({"query": QUERY, "texts": []}, 400, "Empty", "texts is empty: send at least one text."),
    ({"query": " ", "texts": DOCS}, 400, "Empty", "query is empty"),
    ({"query": QUERY, "texts": ["d"] * 6}, 413, "Validation", "6 texts sent; this server takes at most max_documents=5"),
    ({"query": QUERY, "texts": ["x" * 201]}, 413, "Validation",
     "text 0 has 201 characters; the limit is max_document_chars=200"),
    ({"query": QUERY, "texts": ["cat " * 45]}, 413, "Validation", "longer than the model's max_length=48 tokens"),
    ({"query": QUERY, "texts": DOCS, "pad": "z" * 4000}, 413, "Validation", "max_body_bytes=4000"),
    ({"query": QUERY, "texts": DOCS, "truncation_direction": "middle"}, 422, "Validation",
     "truncation_direction: Input should be 'Right' or 'Left'"),
    ({"texts": DOCS}, 422, "Validation", "query: Field required"),
    ({"query": QUERY, "texts": "the cat"}, 422, "Validation", "texts: Input should be a valid list"),
    ({"query": QUERY, "texts": DOCS, "model": "nope"}, 404, "Validation",
     "model 'nope' is not served here; choose one of: tiny"),
])
def test_tei_errors_are_tei_error_bodies_with_tei_types_and_statuses(server, payload, status, error_type, message):
    response = httpx.post(f"{server.url}/rerank", json=payload)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error", "error_type"} and body["error_type"] == error_type
    assert message in body["error"]


def test_tei_body_that_is_not_json_is_a_422_naming_the_problem(server):
    response = httpx.post(f"{server.url}/rerank", content=b'{"query": ', headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error_type"] == "Validation" and "body: not valid JSON" in response.json()["error"]


def test_wrong_or_missing_token_is_401_in_each_routes_shape(reranker, serve_tiny, monkeypatch):
    monkeypatch.setenv("RF_TOKEN", "s3cret")
    live = serve_tiny(reranker, token_env="RF_TOKEN")
    payload = {"query": QUERY, "documents": DOCS}
    missing = httpx.post(f"{live.url}/v2/rerank", json=payload)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    wrong = httpx.post(f"{live.url}/v2/rerank", json=payload, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json() == {
        "message": "missing or wrong bearer token: send 'Authorization: Bearer <token>'."}
    tei = httpx.post(f"{live.url}/rerank", json={"query": QUERY, "texts": DOCS})
    assert tei.status_code == 401 and tei.json() == {
        "error": "missing or wrong bearer token: send 'Authorization: Bearer <token>'.", "error_type": "Validation"}
    assert httpx.get(f"{live.url}/info").status_code == 401
    ok = httpx.post(f"{live.url}/v2/rerank", json=payload, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert httpx.get(f"{live.url}/info", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert httpx.get(f"{live.url}/health").status_code == 200 and httpx.get(f"{live.url}/metrics").status_code == 200


def test_empty_token_env_is_refused_at_start(reranker, monkeypatch):
    monkeypatch.setenv("RF_EMPTY", "")
    with pytest.raises(ValueError, match="token_env=RF_EMPTY but that environment variable is empty"):
        create_app(ServeConfig(model="tiny", token_env="RF_EMPTY"), reranker=reranker)


def test_health_openapi_and_default_loopback_bind(server):
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok" and health["models"] == ["tiny"]
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert {"/v1/rerank", "/v2/rerank", "/rerank", "/v1/query", "/health", "/info", "/metrics"} <= set(paths)
    assert ServeConfig().host == "127.0.0.1"


def test_scores_go_through_the_rerankers_probability_and_raw_scores_do_not(reranker, serve_tiny, monkeypatch):
    monkeypatch.setattr(reranker, "probability", lambda logit: 0.25 + 0.0 * logit, raising=False)
    live = serve_tiny(reranker)
    logits = sorted(reranker.score(QUERY, DOCS, raw=True), reverse=True)
    v2 = httpx.post(f"{live.url}/v2/rerank", json={"query": QUERY, "documents": DOCS}).json()
    tei = httpx.post(f"{live.url}/rerank", json={"query": QUERY, "texts": DOCS}).json()
    tei_raw = httpx.post(f"{live.url}/rerank", json={"query": QUERY, "texts": DOCS, "raw_scores": True}).json()
    infinity = httpx.post(f"{live.url}/rerank", json={"query": QUERY, "documents": DOCS}).json()
    assert [r["relevance_score"] for r in v2["results"]] == [0.25] * 3
    assert [r["score"] for r in tei] == [0.25] * 3
    assert [r["relevance_score"] for r in infinity["results"]] == [0.25] * 3
    assert [r["score"] for r in tei_raw] == pytest.approx(logits, abs=1e-6)


class WithoutProbability:
    """A reranker from before ``Reranker.probability`` existed: scores and limits, nothing else."""

    def __init__(self, reranker):
        self.score_pairs, self.limits = reranker.score_pairs, reranker.limits
        self.max_length, self.tokenizer = reranker.max_length, reranker.tokenizer


def test_a_reranker_without_probability_scores_by_the_sigmoid(reranker, launch):
    live = launch(create_app(ServeConfig(model="old", max_length=48), reranker=WithoutProbability(reranker)))
    body = httpx.post(f"{live.url}/v2/rerank", json={"query": QUERY, "documents": DOCS}).json()
    logits = reranker.score(QUERY, DOCS, raw=True)
    assert {r["index"]: r["relevance_score"] for r in body["results"]} == pytest.approx(
        {i: sigmoid(x) for i, x in enumerate(logits)}, abs=1e-6)


def test_query_endpoint_runs_retrieve_rerank_generate(reranker, launch, beir_dir, tiny_encoder, tiny_cross_encoder,
                                                      tmp_path):
    from rerankforge.core.config import load_config
    from rerankforge.eval.config import EvalConfig
    from rerankforge.eval.pipeline import Pipeline

    cfg = load_config(EvalConfig, None, [
        f"data.path={beir_dir}", "retrieve.top_k=8", f"first_stage.encoder.name_or_path={tiny_encoder}",
        "rerankers={none: {model: null}, tiny: {model: " + tiny_cross_encoder + ", depth: 4, max_length: 48}}",
        f"generate.token_counter={tiny_encoder}", "generate.top_n=2", f"cache_dir={tmp_path / 'cache'}"])
    pipeline = Pipeline.from_config(cfg)
    live = launch(create_app(ServeConfig(model="tiny", max_length=48), reranker=reranker, pipeline=pipeline))
    body = httpx.post(f"{live.url}/v1/query", json={"query": "cat sat protein"}).json()
    assert body["reranker"] == "tiny" and len(body["passages"]) == 2 and body["answer"] is not None
    assert body["passages"] == pipeline.query("cat sat protein")["passages"]
    bad = httpx.post(f"{live.url}/v1/query", json={"query": "x", "reranker": "nope"})
    assert bad.status_code == 422 and bad.json() == {
        "message": "reranker 'nope' is not configured; choose one of none, tiny."}
    empty = httpx.post(f"{live.url}/v1/query", json={"query": " "})
    assert empty.status_code == 422 and empty.json() == {"message": "query is empty."}


def test_query_endpoint_applies_the_fitted_fusion_weight(reranker, launch, beir_dir, tiny_encoder, tiny_cross_encoder,
                                                        tmp_path):
    from rerankforge.core.config import load_config
    from rerankforge.eval.config import EvalConfig
    from rerankforge.eval.pipeline import Pipeline

    model = with_fusion(tiny_cross_encoder, tmp_path / "fused-model", "rrf", 0.4)
    cfg = load_config(EvalConfig, None, [
        f"data.path={beir_dir}", "retrieve.top_k=8", f"first_stage.encoder.name_or_path={tiny_encoder}",
        "rerankers={tiny: {model: " + model + ", depth: 6, max_length: 48, fusion: {method: auto}}}",
        "generate.kind=none", "generate.top_n=3", f"cache_dir={tmp_path / 'cache'}"])
    pipeline = Pipeline.from_config(cfg)
    live = launch(create_app(ServeConfig(model="tiny", max_length=48), reranker=reranker, pipeline=pipeline))
    body = httpx.post(f"{live.url}/v1/query", json={"query": "cat sat protein"}).json()
    assert body["fusion"] == {"method": "rrf", "alpha": 0.4}
    hits = pipeline.retriever.search(["cat sat protein"])[0]
    expected = pipeline.rerank("tiny", "cat sat protein", hits)
    assert [p["doc_id"] for p in body["passages"]] == expected.passing[:3]
    assert expected.alone is not None


def test_openvino_backend_serves_the_same_scores(tiny_cross_encoder, reranker, launch):
    pytest.importorskip("openvino")
    live = launch(create_app(ServeConfig(model=tiny_cross_encoder, max_length=48, backend="openvino", device="cpu")))
    got = httpx.post(f"{live.url}/rerank", json={"query": QUERY, "texts": DOCS, "raw_scores": True}).json()
    expected = reranker.score(QUERY, DOCS, raw=True)
    assert {r["index"]: r["score"] for r in got} == pytest.approx(dict(enumerate(expected)), abs=1e-4)


def test_one_failing_request_in_a_micro_batch_gets_500_and_the_others_their_scores(reranker, serve_tiny, monkeypatch,
                                                                                    caplog):
    original, calls = reranker.score_pairs, []

    def flaky(pairs, raw=False, limits=None):
        calls.append({d for _, d in pairs})
        if any("poison" in d for _, d in pairs):
            raise RuntimeError("poison pair")
        return original(pairs, raw=raw, limits=limits)

    monkeypatch.setattr(reranker, "score_pairs", flaky)
    live = serve_tiny(reranker, batch_wait_ms=300)
    queries = [f"{w} sat on the mat" for w in ("cat", "dog", "fish", "bird", "mouse")]

    async def send():
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
            good = [client.post("/v2/rerank", json={"query": q, "documents": DOCS}) for q in queries]
            bad = client.post("/v2/rerank", json={"query": QUERY, "documents": DOCS + ["poison"]})
            return await asyncio.gather(bad, *good)

    with caplog.at_level(logging.ERROR, logger="rerankforge.serve"):
        bad, *good = asyncio.run(send())
    after = httpx.post(f"{live.url}/v2/rerank", json={"query": QUERY, "documents": DOCS})
    assert bad.status_code == 500 and bad.json() == {
        "message": "internal server error (RuntimeError); the server logged the traceback."}
    assert "poison pair" in caplog.text and "Traceback" in caplog.text
    for q, response in zip(queries, good):
        assert response.status_code == 200
        expected = dict(enumerate(reranker.score(q, DOCS, limits=cohere_v2_limits(reranker))))
        assert {r["index"]: r["relevance_score"] for r in response.json()["results"]} == pytest.approx(expected,
                                                                                                       abs=1e-6)
    assert len(calls[0]) == len(DOCS) + 1  # the first call was shared: the bad request with good ones
    assert after.status_code == 200 and len(after.json()["results"]) == 3


def test_a_failing_model_is_a_tei_backend_error_and_a_cohere_500(reranker, serve_tiny, monkeypatch):
    def broken(pairs, raw=False, limits=None):
        raise ValueError("model exploded")

    monkeypatch.setattr(reranker, "score_pairs", broken)
    live = serve_tiny(reranker, micro_batching=False)
    tei = httpx.post(f"{live.url}/rerank", json={"query": QUERY, "texts": DOCS, "truncate": True})
    v1 = httpx.post(f"{live.url}/v1/rerank", json={"query": QUERY, "documents": DOCS})
    assert tei.status_code == 424
    assert tei.json() == {"error": "inference failed (ValueError); the server logged the traceback.",
                          "error_type": "Backend"}
    assert v1.status_code == 500
    assert v1.json() == {"message": "internal server error (ValueError); the server logged the traceback."}


def test_default_limits_take_a_100_kb_document():
    cfg = ServeConfig()
    assert cfg.max_document_chars >= 100_000 and cfg.max_body_bytes >= 200_000


@pytest.fixture(scope="module")
def fused_reranker(tiny_cross_encoder, tmp_path_factory):
    return Reranker(with_fusion(tiny_cross_encoder, tmp_path_factory.mktemp("fused") / "model", "interpolation", 0.3),
                    device="cpu", max_length=48)


FIRST_STAGE = [0.2, 0.9, 0.5]  # the retriever's score of each of DOCS


@pytest.mark.parametrize("path, body, results, score", [
    ("/v2/rerank", {"model": "x", "documents": DOCS}, lambda b: b["results"], "relevance_score"),
    ("/v1/rerank", {"documents": [{"text": d} for d in DOCS]}, lambda b: b["results"], "relevance_score"),
    ("/rerank", {"texts": DOCS}, lambda b: b, "score"),
    ("/rerank", {"documents": DOCS}, lambda b: b["results"], "relevance_score"),
])
def test_first_stage_scores_are_an_optional_extension_on_every_route(fused_reranker, serve_tiny, path, body, results,
                                                                    score):
    live = serve_tiny(fused_reranker)
    plain = results(httpx.post(f"{live.url}{path}", json={"query": QUERY, **body}).json())
    alone = fused_reranker.rerank(QUERY, DOCS)
    assert [(r["index"], r[score]) for r in plain] == [(r["index"], pytest.approx(r["relevance_score"], abs=1e-6))
                                                       for r in alone]
    fused = results(httpx.post(f"{live.url}{path}", json={"query": QUERY, **body,
                                                           "first_stage_scores": FIRST_STAGE}).json())
    expected = fused_reranker.rerank(QUERY, DOCS, first_stage_scores=FIRST_STAGE)
    assert [(r["index"], r[score]) for r in fused] == [(r["index"], pytest.approx(r["relevance_score"], abs=1e-6))
                                                       for r in expected]
    assert [r["index"] for r in fused] != [r["index"] for r in plain]


def test_cohere_sdk_sends_first_stage_scores_as_an_additional_body_parameter(fused_reranker, serve_tiny):
    cohere = pytest.importorskip("cohere")
    live = serve_tiny(fused_reranker)
    client = cohere.ClientV2(api_key="unused", base_url=live.url)
    response = client.rerank(model="rerank-v3.5", query=QUERY, documents=DOCS,
                             request_options={"additional_body_parameters": {"first_stage_scores": FIRST_STAGE}})
    expected = fused_reranker.rerank(QUERY, DOCS, first_stage_scores=FIRST_STAGE)
    assert [r.index for r in response.results] == [r["index"] for r in expected]


@pytest.mark.parametrize("path, body, message", [
    ("/v2/rerank", {"documents": DOCS, "first_stage_scores": [1.0]}, "first_stage_scores has 1 values for 3 documents"),
    ("/rerank", {"texts": DOCS, "first_stage_scores": [1.0, 2.0]}, "first_stage_scores has 2 values for 3 documents"),
])
def test_first_stage_scores_that_do_not_fit_are_a_422(fused_reranker, serve_tiny, path, body, message):
    response = httpx.post(f"{serve_tiny(fused_reranker).url}{path}", json={"query": QUERY, **body})
    assert response.status_code == 422 and message in response.text


def test_first_stage_scores_for_a_model_without_fusion_json_are_a_422(server):
    response = httpx.post(f"{server.url}/v2/rerank", json={"query": QUERY, "documents": DOCS,
                                                           "first_stage_scores": FIRST_STAGE})
    assert response.status_code == 422 and "has no fusion.json" in response.json()["message"]
