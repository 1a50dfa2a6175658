"""The rerank endpoints: Cohere (``/v1/rerank``, ``/v2/rerank``) and ``/rerank`` in TEI's or infinity's shape."""

import asyncio
import dataclasses
import uuid

from rerankforge.serve.checks import check_documents, check_pair_lengths, cohere_limits, pair_lengths
from rerankforge.serve.config import ServeConfig
from rerankforge.serve.registry import Registry, Served
from rerankforge.serve.schema import (CohereRerankRequest, InfinityRerankRequest, RerankBody, TEIRerankRequest,
                                      cohere_response, infinity_response, tei_response)


async def on_model_thread(served: Served, fn, *args):
    """``fn(*args)`` on the thread that runs the forward passes: the tokenizer is not shared across threads."""
    return await asyncio.get_running_loop().run_in_executor(served.batcher.executor, fn, *args)


def prompt_tokens(reranker, query: str, texts: list[str]) -> int:
    """Tokens the model reads for these pairs: each pair's, up to ``max_length``."""
    return sum(min(n, reranker.max_length) for n in pair_lengths(reranker.tokenizer, query, texts))


async def cohere(cfg: ServeConfig, registry: Registry, body: CohereRerankRequest, version: int) -> dict:
    served = registry.pick(body.model, any_name_if_single=True)
    texts = body.texts()
    check_documents(cfg, body.query, texts, body.top_n)
    limits = cohere_limits(served.reranker.limits, body, version)
    logits = await served.batcher.score([(body.query, t) for t in texts], limits)
    return cohere_response(str(uuid.uuid4()), texts, logits, body.top_n,
                           body.return_documents if version == 1 else False, version, served.probability)


async def tei(cfg: ServeConfig, registry: Registry, body: TEIRerankRequest) -> list[dict]:
    served = registry.pick(body.model)
    check_documents(cfg, body.query, body.texts, None, "tei", "texts")
    reranker = served.reranker
    if not body.truncate:
        lengths = await on_model_thread(served, pair_lengths, reranker.tokenizer, body.query, body.texts)
        check_pair_lengths(lengths, reranker.max_length)
    limits = dataclasses.replace(reranker.limits, direction=body.truncation_direction.lower())
    logits = await served.batcher.score([(body.query, t) for t in body.texts], limits)
    return tei_response(body.texts, logits, body.raw_scores, body.return_text, served.probability)


async def infinity(cfg: ServeConfig, registry: Registry, body: InfinityRerankRequest) -> dict:
    served = registry.pick(body.model)
    check_documents(cfg, body.query, body.documents, None, "infinity")
    reranker = served.reranker
    tokens = await on_model_thread(served, prompt_tokens, reranker, body.query, body.documents)
    logits = await served.batcher.score([(body.query, d) for d in body.documents], reranker.limits)
    return infinity_response(body, logits, served.name, tokens, served.probability)


def add_rerank_routes(app, cfg: ServeConfig, registry: Registry, authorize) -> None:
    from fastapi import Depends, Request

    guarded = [Depends(authorize)]

    @app.post("/v1/rerank", dependencies=guarded)
    async def rerank_v1(body: CohereRerankRequest):
        """Cohere's v1 rerank."""
        return await cohere(cfg, registry, body, 1)

    @app.post("/v2/rerank", dependencies=guarded)
    async def rerank_v2(body: CohereRerankRequest):
        """Cohere's v2 rerank."""
        return await cohere(cfg, registry, body, 2)

    @app.post("/rerank", dependencies=guarded)
    async def rerank(body: RerankBody, request: Request):
        """text-embeddings-inference's rerank (``texts``), or infinity's (``documents``), answered in kind."""
        if isinstance(body, InfinityRerankRequest):
            request.state.shape = "infinity"
            return await infinity(cfg, registry, body)
        request.state.shape = "tei"
        return await tei(cfg, registry, body)
