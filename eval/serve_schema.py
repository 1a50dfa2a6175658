"""Request and response shapes of the server: Cohere rerank (v1/v2), TEI rerank, and the pipeline query."""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, Field, field_validator

from rerankforge.models.reranker import sigmoid


class TextDocument(BaseModel, extra="allow"):
    text: str


COHERE_MAX_TOKENS_PER_DOC = 4096  # Cohere v2's default max_tokens_per_doc
COHERE_MAX_CHUNKS_PER_DOC = 10  # Cohere v1's default max_chunks_per_doc


class CohereRerankRequest(BaseModel):
    """Cohere's rerank request; ``model`` is accepted and ignored (the server serves one model).

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

    def texts(self) -> list[str]:
        return [d if isinstance(d, str) else d.text for d in self.documents]


class TEIRerankRequest(BaseModel):
    """text-embeddings-inference's ``/rerank`` request.

    ``truncate=false`` (TEI's default): a (query, text) pair longer than the model's ``max_length`` tokens is a 413.
    ``truncate=true``: the query keeps its first ``max_query_length`` tokens and the text what is left, its start
    (``truncation_direction="Right"``, default) or its end ("Left"); TEI's spelling, any case.
    """

    query: str
    texts: list[str]
    raw_scores: bool = False
    return_text: bool = False
    truncate: bool = False
    truncation_direction: Literal["Right", "Left"] = "Right"

    @field_validator("truncation_direction", mode="before")
    @classmethod
    def _any_case(cls, value):
        return value.capitalize() if isinstance(value, str) else value


class QueryRequest(BaseModel):
    query: str
    reranker: Optional[str] = None  # a name from the pipeline config's rerankers (default: the last)
    top_n: Optional[int] = Field(default=None, ge=1)


def ranked(logits: list[float]) -> list[int]:
    """Indices best first; ties keep request order (as CrossEncoder.rank and the in-process Reranker do)."""
    return sorted(range(len(logits)), key=lambda i: (-logits[i], i))


def cohere_response(request_id: str, texts: list[str], logits: list[float], top_n: Optional[int],
                    return_documents: bool, version: int) -> dict:
    results = []
    for i in ranked(logits)[: top_n or len(texts)]:
        item = {"index": i, "relevance_score": sigmoid(logits[i])}
        if return_documents:
            item["document"] = {"text": texts[i]}
        results.append(item)
    return {"id": request_id, "results": results,
            "meta": {"api_version": {"version": str(version)}, "billed_units": {"search_units": 1}}}


def tei_response(texts: list[str], logits: list[float], raw_scores: bool, return_text: bool) -> list[dict]:
    out = []
    for i in ranked(logits):
        item = {"index": i, "score": logits[i] if raw_scores else sigmoid(logits[i])}
        if return_text:
            item["text"] = texts[i]
        out.append(item)
    return out
