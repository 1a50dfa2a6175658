"""What every rerank request is checked against, and how Cohere's long-input parameters map onto ``PairLimits``."""

from __future__ import annotations

from typing import Optional, Sequence

from rerankforge.models.pairs import PairLimits
from rerankforge.serve.config import ServeConfig
from rerankforge.serve.errors import ServeError, Shape
from rerankforge.serve.schema import COHERE_MAX_CHUNKS_PER_DOC, COHERE_MAX_TOKENS_PER_DOC, CohereRerankRequest


def cohere_limits(default: PairLimits, body: CohereRerankRequest, version: int) -> PairLimits:
    """How a Cohere request fits long inputs: the query cut to ``default.max_query_length`` tokens and long
    documents chunked into overlapping windows scored by their best one (max pooling, as Cohere does).

    v2: documents are first cut to ``max_tokens_per_doc`` tokens (default 4096), then chunked. v1: at most
    ``max_chunks_per_doc`` chunks (default 10), the first ones; one chunk is plain truncation.
    """
    if version == 1:
        tokens, windows = body.max_tokens_per_doc, body.max_chunks_per_doc or COHERE_MAX_CHUNKS_PER_DOC
    else:
        tokens, windows = body.max_tokens_per_doc or COHERE_MAX_TOKENS_PER_DOC, body.max_chunks_per_doc
    return PairLimits(max_length=default.max_length, max_query_length=default.max_query_length,
                      max_passage_tokens=tokens, max_windows=windows)


def pair_lengths(tokenizer, query: str, texts: Sequence[str]) -> list[int]:
    """Tokens of each (query, text) pair with the special tokens, untruncated (never raises on length)."""
    enc = tokenizer([query] * len(texts), list(texts), truncation=False, verbose=False,
                    return_attention_mask=False, return_token_type_ids=False)
    return [len(ids) for ids in enc["input_ids"]]


def check_documents(cfg: ServeConfig, query: str, texts: Sequence[str], top_n: Optional[int],
                    shape: Shape = "cohere", field: str = "documents") -> None:
    """The request checks shared by every rerank endpoint; ``field`` names the documents in the request's shape.

    Raises:
        ServeError: an empty query or no documents: 400 in TEI's shape (its ``Empty`` error), else 422; 422 for a
            bad ``top_n``; 413 past a configured limit.
    """
    empty = 400 if shape == "tei" else 422
    if not query.strip():
        raise ServeError(empty, "query is empty: send the text to rank the documents against.")
    if not texts:
        raise ServeError(empty, f"{field} is empty: send at least one {field[:-1]}.")
    if len(texts) > cfg.max_documents:
        raise ServeError(413, f"{len(texts)} {field} sent; this server takes at most max_documents="
                              f"{cfg.max_documents} per request. Split the request.")
    longest = max(range(len(texts)), key=lambda i: len(texts[i]))
    if len(texts[longest]) > cfg.max_document_chars:
        raise ServeError(413, f"{field[:-1]} {longest} has {len(texts[longest])} characters; the limit is "
                              f"max_document_chars={cfg.max_document_chars}.")
    if top_n is not None and not 1 <= top_n <= len(texts):
        raise ServeError(422, f"top_n={top_n} is out of range: expected 1 <= top_n <= {len(texts)} (the number "
                              "of documents), or leave it out.")


def check_pair_lengths(lengths: list[int], max_length: int) -> None:
    """TEI without ``truncate``: every (query, text) pair must fit the model.

    Raises:
        ServeError: 413 (TEI's ``Validation``) naming the first text that does not fit, its tokens and the limit.
    """
    too_long = [i for i, n in enumerate(lengths) if n > max_length]
    if too_long:
        i = too_long[0]
        raise ServeError(413, f"text {i} has {lengths[i]} tokens with the query and special tokens, longer than the "
                              f"model's max_length={max_length} tokens; send truncate=true (or a shorter "
                              "query/text).")
