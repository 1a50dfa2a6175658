"""Request and response shapes of the server: Cohere rerank (v1/v2), TEI rerank, and the pipeline query."""

from __future__ import annotations

from typing import Optional, Union

from pydantic import BaseModel, Field

from rerankforge.models.reranker import sigmoid


class TextDocument(BaseModel, extra="allow"):
    text: str


class CohereRerankRequest(BaseModel):
    """Cohere's rerank request; ``model`` is accepted and ignored (the server serves one model)."""

    query: str
    documents: list[Union[str, TextDocument]]
    model: Optional[str] = None
    top_n: Optional[int] = None
    return_documents: bool = False  # v1
    max_tokens_per_doc: Optional[int] = Field(default=None, ge=1)  # v2
    rank_fields: Optional[list[str]] = None

    def texts(self) -> list[str]:
        return [d if isinstance(d, str) else d.text for d in self.documents]


class TEIRerankRequest(BaseModel):
    """text-embeddings-inference's ``/rerank`` request."""

    query: str
    texts: list[str]
    raw_scores: bool = False
    return_text: bool = False
    truncate: bool = False
    truncation_direction: str = "Right"


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
