"""Request and response shapes of the server: Cohere rerank (v1/v2), TEI rerank, infinity rerank, the pipeline query.

Every rerank request takes one extension field, ``first_stage_scores``: the retriever's score of each document, in
the documents' order. With it, the answer is the reranker fused with the first stage by the weight fitted at
training (``fusion.json``, as eval's fused run): the order is the fused one and each score the fused score, which
is not a probability. Without it (what Cohere's, TEI's and infinity's clients send) the answer is the plain
cross-encoder's.

``POST /rerank`` takes two shapes: text-embeddings-inference's (``texts``) and infinity's (``documents``);
``RerankBody`` tells them apart by those keys, so a client of either gets its own answer and its own errors.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Callable, Literal, Optional, Union

from pydantic import BaseModel, Discriminator, Field, Tag, field_validator

COHERE_MAX_TOKENS_PER_DOC = 4096  # Cohere v2's default max_tokens_per_doc
COHERE_MAX_CHUNKS_PER_DOC = 10  # Cohere v1's default max_chunks_per_doc
INFINITY_DEFAULT_MODEL = "default/not-specified"  # what infinity's clients send when no model is named


class TextDocument(BaseModel, extra="allow"):
    text: str


class CohereRerankRequest(BaseModel):
    """Cohere's rerank request. ``model`` picks a configured reranker (see ``serve.registry``).

    Long inputs never fail: the query keeps its first ``max_query_length`` tokens (the reranker's, default 64) and
    a long document is split into overlapping chunks of what the model's ``max_length`` leaves after the query,
    scored as its best chunk (max pooling, as Cohere does). v2: the document is first cut to ``max_tokens_per_doc``
    tokens (default 4096). v1: at most ``max_chunks_per_doc`` chunks (default 10), the first ones.
    """

    query: str
    documents: list[Union[str, TextDocument]]
    model: Optional[str] = None
    top_n: Optional[int] = None
    return_documents: bool = False  # v1
    max_chunks_per_doc: Optional[int] = Field(default=None, ge=1)  # v1; None: COHERE_MAX_CHUNKS_PER_DOC
    max_tokens_per_doc: Optional[int] = Field(default=None, ge=1)  # v2; None: COHERE_MAX_TOKENS_PER_DOC
    rank_fields: Optional[list[str]] = None
    first_stage_scores: Optional[list[float]] = None  # rerankforge's extension (module docstring)

    def texts(self) -> list[str]:
        return [d if isinstance(d, str) else d.text for d in self.documents]


class TEIRerankRequest(BaseModel):
    """text-embeddings-inference's ``/rerank`` request.

    ``truncate=false`` (TEI's default; null means the same): a (query, text) pair longer than the model's
    ``max_length`` tokens is a 413. ``truncate=true``: the query keeps its first ``max_query_length`` tokens and the
    text what is left, its start (``truncation_direction="Right"``, default: the right end is cut) or its end
    ("Left"); TEI's spelling, any case. ``model`` is not TEI's: an optional name of a configured reranker.
    """

    query: str
    texts: list[str]
    raw_scores: bool = False
    return_text: bool = False
    truncate: Optional[bool] = False
    truncation_direction: Literal["Right", "Left"] = "Right"
    model: Optional[str] = None
    first_stage_scores: Optional[list[float]] = None  # rerankforge's extension (module docstring)

    @field_validator("truncation_direction", mode="before")
    @classmethod
    def _any_case(cls, value):
        return value.capitalize() if isinstance(value, str) else value


class InfinityRerankRequest(BaseModel):
    """infinity's ``/rerank`` request (``documents`` instead of TEI's ``texts``).

    Documents are truncated to the model's ``max_length`` (after the query's first ``max_query_length`` tokens),
    as infinity does. ``top_n`` larger than the number of documents returns them all, as infinity does.
    ``model``: a configured reranker's name; absent or infinity's ``"default/not-specified"``: the default one.
    """

    query: str
    documents: list[str]
    return_documents: bool = False
    raw_scores: bool = False
    model: Optional[str] = None
    top_n: Optional[int] = Field(default=None, gt=0)
    first_stage_scores: Optional[list[float]] = None  # rerankforge's extension (module docstring)


def rerank_shape(value) -> str:
    """``"infinity"`` for a body with ``documents`` and no ``texts``, else ``"tei"`` (TEI also gets bad bodies)."""
    if isinstance(value, dict):
        return "infinity" if "documents" in value and "texts" not in value else "tei"
    return "infinity" if isinstance(value, InfinityRerankRequest) else "tei"


RerankBody = Annotated[Union[Annotated[TEIRerankRequest, Tag("tei")],
                             Annotated[InfinityRerankRequest, Tag("infinity")]], Discriminator(rerank_shape)]


class QueryRequest(BaseModel):
    query: str
    reranker: Optional[str] = None  # a name from the pipeline config's rerankers (default: the last)
    top_n: Optional[int] = Field(default=None, ge=1)


def ranked(logits: list[float]) -> list[int]:
    """Indices best first; ties keep request order (as CrossEncoder.rank and the in-process Reranker do)."""
    return sorted(range(len(logits)), key=lambda i: (-logits[i], i))


Probability = Callable[[float], float]  # a reranker's logit -> relevance score (calibrated or plain sigmoid)


@dataclass(frozen=True)
class Scored:
    """A request's answer before its shape: each document's score (request order) and the ranking, best first."""

    scores: list[float]
    order: list[int]


def cohere_response(request_id: str, texts: list[str], scored: Scored, top_n: Optional[int],
                    return_documents: bool, version: int) -> dict:
    results = []
    for i in scored.order[: top_n or len(texts)]:
        item = {"index": i, "relevance_score": scored.scores[i]}
        if return_documents:
            item["document"] = {"text": texts[i]}
        results.append(item)
    return {"id": request_id, "results": results,
            "meta": {"api_version": {"version": str(version)}, "billed_units": {"search_units": 1}}}


def tei_response(texts: list[str], scored: Scored, return_text: bool) -> list[dict]:
    out = []
    for i in scored.order:
        item = {"index": i, "score": scored.scores[i]}
        if return_text:
            item["text"] = texts[i]
        out.append(item)
    return out


def infinity_response(body: InfinityRerankRequest, scored: Scored, model: str, tokens: int) -> dict:
    """infinity's ``ReRankResult``: results best first (``document`` null unless asked for), token usage."""
    results = []
    for i in scored.order[: body.top_n or len(scored.order)]:
        results.append({"relevance_score": scored.scores[i], "index": i,
                        "document": body.documents[i] if body.return_documents else None})
    return {"object": "rerank", "results": results, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            "id": f"rerankforge-{uuid.uuid4()}", "created": int(time.time())}
