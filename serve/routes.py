"""The rerank endpoints: Cohere (``/v1/rerank``, ``/v2/rerank``) and ``/rerank`` in TEI's or infinity's shape."""

import asyncio
import dataclasses
import uuid
from typing import Optional

from rerankforge.models.fusion import fuse_request
from rerankforge.serve.checks import check_documents, check_pair_lengths, cohere_limits, pair_lengths
from rerankforge.serve.config import ServeConfig
from rerankforge.serve.errors import ServeError
from rerankforge.serve.registry import Registry, Served
from rerankforge.serve.schema import (
    CohereRerankRequest,
    InfinityRerankRequest,
    RerankBody,
    Scored,
    TEIRerankRequest,
    cohere_response,
    infinity_response,
    ranked,
    tei_response,
)


async def on_model_thread(served: Served, fn, *args):
    """``fn(*args)`` on the thread that runs the forward passes: the tokenizer is not shared across threads."""
    return await asyncio.get_running_loop().run_in_executor(served.batcher.executor, fn, *args)


def prompt_tokens(reranker, query: str, texts: list[str]) -> int:
    """Tokens the model reads for these pairs: each pair's, up to ``max_length``."""
    return sum(min(n, reranker.max_length) for n in pair_lengths(reranker.tokenizer, query, texts))


def scored(served: Served, logits: list[float], first_stage_scores: Optional[list[float]],
           raw: bool = False) -> Scored:
    """The reranker's scores (probabilities, or logits with ``raw``) in its order; with ``first_stage_scores``, the
    fused scores in the fused order (``models.fusion.fuse_request``).

    Raises:
        ServeError: 422 when the served checkpoint has no fusion.json or the scores do not fit the documents.
    """
    if first_stage_scores is None:
        return Scored(logits if raw else [served.probability(x) for x in logits], ranked(logits))
    fusion = getattr(served.reranker, "fusion", None)
    if fusion is None:
        raise ServeError(422, f"first_stage_scores were sent, but the reranker '{served.name}' has no fusion.json "
                              "(training writes one when its data has a dev split). Leave first_stage_scores out "
                              "for the reranker alone.", tei_type="Validation")
    try:
        scores, order = fuse_request(logits, first_stage_scores, fusion)
    except ValueError as exc:
        raise ServeError(422, str(exc), tei_type="Validation") from None
    return Scored(scores, order)


async def cohere(cfg: ServeConfig, registry: Registry, body: CohereRerankRequest, version: int) -> dict:
    served = registry.pick(body.model, any_name_if_single=True)
    texts = body.texts()
    check_documents(cfg, body.query, texts, body.top_n)
    limits = cohere_limits(served.reranker.limits, body, version)
    logits = await served.batcher.score([(body.query, t) for t in texts], limits)
    return cohere_response(str(uuid.uuid4()), texts, scored(served, logits, body.first_stage_scores), body.top_n,
                           body.return_documents if version == 1 else False, version)


async def tei(cfg: ServeConfig, registry: Registry, body: TEIRerankRequest) -> list[dict]:
    served = registry.pick(body.model)
    check_documents(cfg, body.query, body.texts, None, "tei", "texts")
    reranker = served.reranker
    if not body.truncate:
        lengths = await on_model_thread(served, pair_lengths, reranker.tokenizer, body.query, body.texts)
        check_pair_lengths(lengths, reranker.max_length)
    limits = dataclasses.replace(reranker.limits, direction=body.truncation_direction.lower())
    logits = await served.batcher.score([(body.query, t) for t in body.texts], limits)
    return tei_response(body.texts, scored(served, logits, body.first_stage_scores, body.raw_scores), body.return_text)


async def infinity(cfg: ServeConfig, registry: Registry, body: InfinityRerankRequest) -> dict:
    served = registry.pick(body.model)
    check_documents(cfg, body.query, body.documents, None, "infinity")
    reranker = served.reranker
    tokens = await on_model_thread(served, prompt_tokens, reranker, body.query, body.documents)
    logits = await served.batcher.score([(body.query, d) for d in body.documents], reranker.limits)
    return infinity_response(body, scored(served, logits, body.first_stage_scores, body.raw_scores), served.name,
                             tokens)


def add_rerank_routes(app, cfg: ServeConfig, registry: Registry, authorize) -> None:
    # optional extra [serve]
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
