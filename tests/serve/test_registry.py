"""The request's ``model`` picks among the configured rerankers: the Cohere SDK, TEI and infinity bodies, the
default, the 404 naming the choices, and how ServeConfig names its rerankers."""

from __future__ import annotations

import httpx
import pytest
from conftest import DOCS as SHORT_DOCS
from conftest import QUERY, WORDS

from rerankforge.core.config import load_config
from rerankforge.models.reranker import Reranker
from rerankforge.serve import ServeConfig, create_app

# 100 one-token words: the 48-token model reads a third of it, the 128-token one all of it, so their scores differ
DOCS = ["the cat sat", " ".join(WORDS[i % len(WORDS)] for i in range(100))]


@pytest.fixture(scope="module")
def narrow(tiny_cross_encoder):
    return Reranker(tiny_cross_encoder, device="cpu", max_length=48)


@pytest.fixture
def two_models(narrow, wide_reranker, launch):
    """A server of "narrow" (max_length 48, the default: it is `model`) and "wide" (128, from `models`)."""
    cfg = ServeConfig(model="narrow-path", model_name="narrow", models={"wide": "wide-path"})
    return launch(create_app(cfg, reranker=narrow, rerankers={"wide": wide_reranker}))


def scores_by_index(results, key="relevance_score"):
    return {r["index"]: r[key] for r in results}


def test_the_cohere_sdk_picks_each_reranker_by_name(two_models, narrow, wide_reranker):
    cohere = pytest.importorskip("cohere")
    client = cohere.ClientV2(api_key="unused", base_url=two_models.url)
    for name, reranker in (("narrow", narrow), ("wide", wide_reranker)):
        got = {r.index: r.relevance_score for r in client.rerank(model=name, query=QUERY, documents=DOCS).results}
        assert got == pytest.approx(dict(enumerate(reranker.score(QUERY, DOCS))), abs=1e-6)
    assert narrow.score(QUERY, DOCS)[1] != pytest.approx(wide_reranker.score(QUERY, DOCS)[1], abs=1e-4)


def test_no_model_means_the_default_in_every_shape(two_models, narrow):
    expected = dict(enumerate(narrow.score(QUERY, DOCS)))
    v1 = httpx.post(f"{two_models.url}/v1/rerank", json={"query": QUERY, "documents": DOCS}).json()
    tei = httpx.post(f"{two_models.url}/rerank", json={"query": QUERY, "texts": DOCS, "truncate": True}).json()
    infinity = httpx.post(f"{two_models.url}/rerank", json={"query": QUERY, "documents": DOCS}).json()
    assert scores_by_index(v1["results"]) == pytest.approx(expected, abs=1e-6)
    assert scores_by_index(tei, "score") == pytest.approx(expected, abs=1e-6)
    assert scores_by_index(infinity["results"]) == pytest.approx(expected, abs=1e-6) and infinity["model"] == "narrow"


def test_tei_and_infinity_bodies_pick_a_reranker_by_model(two_models, wide_reranker):
    expected = dict(enumerate(wide_reranker.score(QUERY, DOCS)))
    tei = httpx.post(f"{two_models.url}/rerank", json={"query": QUERY, "texts": DOCS, "model": "wide"}).json()
    infinity = httpx.post(f"{two_models.url}/rerank", json={"query": QUERY, "documents": DOCS,
                                                            "model": "wide"}).json()
    assert scores_by_index(tei, "score") == pytest.approx(expected, abs=1e-6)
    assert scores_by_index(infinity["results"]) == pytest.approx(expected, abs=1e-6) and infinity["model"] == "wide"


def test_an_unknown_model_is_a_404_naming_the_choices_in_each_shape(two_models):
    cohere = pytest.importorskip("cohere")
    message = ("model 'rerank-v3.5' is not served here; choose one of: narrow, wide (or leave model out for the "
               "default, narrow).")
    with pytest.raises(cohere.errors.NotFoundError) as caught:
        cohere.ClientV2(api_key="unused", base_url=two_models.url).rerank(
            model="rerank-v3.5", query=QUERY, documents=DOCS)
    assert caught.value.status_code == 404 and caught.value.body == {"message": message}
    bodies = {"/v1/rerank": {"query": QUERY, "documents": DOCS, "model": "rerank-v3.5"},
              "/rerank": {"query": QUERY, "texts": DOCS, "model": "rerank-v3.5"}}
    v1, tei = (httpx.post(two_models.url + path, json=body) for path, body in bodies.items())
    assert v1.status_code == 404 and v1.json() == {"message": message}
    assert tei.status_code == 404 and tei.json() == {"error": message, "error_type": "Validation"}
    infinity = httpx.post(f"{two_models.url}/rerank", json={"query": QUERY, "documents": DOCS, "model": "rerank-v3.5"})
    assert infinity.status_code == 404
    assert infinity.json() == {"error": {"message": message, "type": "invalid_request_error", "param": None,
                                         "code": 404}}


def test_one_reranker_answers_cohere_under_any_name_and_its_own(server, reranker):
    cohere = pytest.importorskip("cohere")
    client = cohere.ClientV2(api_key="unused", base_url=server.url)
    expected = dict(enumerate(reranker.score(QUERY, SHORT_DOCS)))
    for name in ("tiny", "rerank-v3.5"):
        got = {r.index: r.relevance_score for r in client.rerank(model=name, query=QUERY, documents=SHORT_DOCS).results}
        assert got == pytest.approx(expected, abs=1e-6)
    own = httpx.post(f"{server.url}/rerank", json={"query": QUERY, "documents": SHORT_DOCS, "model": "tiny"})
    assert own.status_code == 200 and own.json()["model"] == "tiny"


def test_rerankers_are_loaded_from_models_by_name(tiny_cross_encoder, launch):
    cfg = load_config(ServeConfig, None, [f"models={{first: {tiny_cross_encoder}, second: {tiny_cross_encoder}}}",
                                          "max_length=48"])
    live = launch(create_app(cfg))
    info = httpx.get(f"{live.url}/info").json()
    assert info["model_id"] == "first" and list(info["rerankers"]) == ["first", "second"]
    assert info["rerankers"]["second"]["model_id"] == tiny_cross_encoder
    assert httpx.post(f"{live.url}/v2/rerank", json={"query": QUERY, "documents": DOCS,
                                                     "model": "second"}).status_code == 200


def test_serve_config_names_its_rerankers():
    assert ServeConfig(model="runs/x/final").reranker_sources() == {"runs/x/final": "runs/x/final"}
    assert ServeConfig(model="BAAI/bge-reranker-base", model_name="bge", models={"mine": "runs/x/final"}
                       ).reranker_sources() == {"bge": "BAAI/bge-reranker-base", "mine": "runs/x/final"}
    assert list(ServeConfig(model="a", models={"z": "b", "a": "a"}).reranker_sources()) == ["a", "z"]
    with pytest.raises(ValueError, match="model_name=m is also a key of models .pointing at other"):
        ServeConfig(model="a", model_name="m", models={"m": "other"}).reranker_sources()
    with pytest.raises(ValueError, match="No model to serve: pass --model PATH"):
        ServeConfig().reranker_sources()
    with pytest.raises(ValueError, match="No model to serve"):
        create_app(ServeConfig())
