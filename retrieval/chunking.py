"""Long documents as passages: split texts into overlapping windows, and score documents from their passages.

A chunked corpus is BEIR-shaped (``{passage_id: {title, text}}``) with passage ids ``<doc_id>#<i>``; ``Documents``
remembers which passages make each document and pools passage scores into document scores:
``max`` (MaxP: the best passage), ``first`` (FirstP: the first passage only) or ``sum``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from tqdm.auto import tqdm

from rerankforge.core.text import windows
from rerankforge.models.resolve import resolve_model
from rerankforge.retrieval.config import ChunkConfig, DataConfig

# text -> list of (start, end) character spans of its tokens; used to chunk by tokens.
TokenSpans = Callable[[str], list[tuple[int, int]]]
Hits = list[tuple[str, float]]
AGGREGATES = ("max", "first", "sum")
# Passages fetched per document wanted when documents are pooled from passages (a long document has many).
PASSAGES_PER_DOCUMENT = 10


def chunk_text(text: str, chunking: ChunkConfig, token_spans: Optional[TokenSpans] = None) -> list[str]:
    """Split ``text`` into windows of ``chunking.size`` tokens (or chars) overlapping by ``chunking.overlap``.

    Passages are slices of the original text, so nothing is re-tokenized or normalised.
    """
    if chunking.unit == "chars":
        pieces = [text[s:e] for s, e in windows(len(text), chunking.size, chunking.overlap)]
    else:
        if token_spans is None:
            raise ValueError("data.chunking.unit=tokens needs a tokenizer; none was given.")
        spans = token_spans(text)
        pieces = [text[spans[s][0]:spans[e - 1][1]] for s, e in windows(len(spans), chunking.size, chunking.overlap)]
    return [p.strip() for p in pieces if p.strip()]


def tokenizer_spans(model_name_or_path: str) -> TokenSpans:
    """Token character spans from a model's tokenizer (local path, cache, offline bundle or Hub id)."""
    # transformers imports torch (slow); only this path needs it
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(model_name_or_path).path)
    return lambda text: tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                                  verbose=False)["offset_mapping"]


def pool(values: Sequence[float], method: str) -> float:
    """A document's score from its passages' scores, in passage order (``first`` takes passage 0's)."""
    if method == "max":
        return max(values)
    if method == "first":
        return values[0]
    if method == "sum":
        return float(sum(values))
    raise ValueError(f"aggregate must be one of {list(AGGREGATES)}, got {method!r}.")


@dataclass
class Documents:
    """Which passages make each document (``chunks[doc_id]``, in text order) and how their scores pool;
    ``read``: how many of a document's passages a reranker scores (the first stage's best for the query; None:
    all of them)."""

    chunks: dict[str, list[str]]
    aggregate: str = "max"
    document_of: dict[str, str] = field(default_factory=dict, repr=False)
    position: dict[str, int] = field(default_factory=dict, repr=False)
    read: Optional[int] = None

    def __post_init__(self) -> None:
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"data.chunking.aggregate must be one of {list(AGGREGATES)}, got {self.aggregate!r}.")
        self.document_of = {p: d for d, passages in self.chunks.items() for p in passages}
        self.position = {p: i for passages in self.chunks.values() for i, p in enumerate(passages)}

    def scored(self, doc_id: str) -> list[str]:
        """The passages that decide a document's score: its first with ``first``, else all of them."""
        return self.chunks[doc_id][:1] if self.aggregate == "first" else self.chunks[doc_id]

    def to_read(self, doc_ids: Sequence[str],
                similarity: Optional[Callable[[list[str]], Sequence[float]]] = None) -> dict[str, list[str]]:
        """The passages a reranker scores for each of ``doc_ids``: ``scored``, cut to the ``read`` ones that
        ``similarity`` (passage ids -> the first stage's scores for the query) ranks best, in text order."""
        if self.read is None or self.aggregate == "first" or similarity is None or all(
                len(self.chunks[d]) <= self.read for d in doc_ids):
            return {d: self.scored(d) for d in doc_ids}
        passages = [p for d in doc_ids for p in self.chunks[d]]
        score = dict(zip(passages, similarity(passages)))
        best = {d: sorted(self.chunks[d], key=lambda p: -score[p])[: self.read] for d in doc_ids}
        return {d: sorted(ps, key=self.position.__getitem__) for d, ps in best.items()}

    def fetch_depth(self, k: int) -> int:
        """How many passages to retrieve for ``k`` documents (a long document has many)."""
        return min(k * PASSAGES_PER_DOCUMENT, len(self.document_of))

    def _counted(self, hits: Hits) -> list[tuple[str, str, float]]:
        """``(doc_id, passage_id, score)`` of the hits that count: with ``first``, first passages only."""
        return [(self.document_of[p], p, s) for p, s in hits if self.aggregate != "first" or self.position[p] == 0]

    def best_passages(self, hits: Hits) -> dict[str, str]:
        """Each retrieved document's best-ranked counted passage, from passage hits (best first)."""
        best: dict[str, str] = {}
        for doc_id, passage_id, _ in self._counted(hits):
            best.setdefault(doc_id, passage_id)
        return best

    def pool_hits(self, hits: Hits, k: Optional[int] = None) -> Hits:
        """Passage hits (best first) as document hits, best first (ties keep the order of first appearance).

        Only the passages ``scored`` lists count: with ``first``, a document whose first passage was not
        retrieved is not retrieved. Scores pool over the retrieved passages of each document.
        """
        grouped: dict[str, list[tuple[int, float]]] = {}
        for doc_id, passage_id, score in self._counted(hits):
            grouped.setdefault(doc_id, []).append((self.position[passage_id], score))
        pooled = [(d, pool([s for _, s in sorted(v)], self.aggregate)) for d, v in grouped.items()]
        return sorted(pooled, key=lambda item: -item[1])[:k]


def chunk_corpus(corpus: dict[str, dict[str, str]], chunking: ChunkConfig,
                 token_spans: Optional[TokenSpans] = None) -> tuple[dict[str, dict[str, str]], Documents]:
    """Every document as passages ``<doc_id>#<i>`` (title kept on each), and the ``Documents`` that map them back.

    A document with no text keeps one empty passage, so every document stays retrievable and countable.
    """
    passages, chunks = {}, {}
    for doc_id, doc in tqdm(corpus.items(), desc="Chunking documents", unit="doc", total=len(corpus),
                            disable=len(corpus) < 1000):
        pieces = chunk_text(doc.get("text", ""), chunking, token_spans) or [""]
        chunks[doc_id] = [f"{doc_id}#{i}" for i in range(len(pieces))]
        for passage_id, piece in zip(chunks[doc_id], pieces):
            passages[passage_id] = {"title": doc.get("title", ""), "text": piece}
    return passages, Documents(chunks, chunking.aggregate, read=chunking.read_passages)


def split_corpus(corpus: dict[str, dict[str, str]], chunking: ChunkConfig,
                 tokenizer_name: Optional[str]) -> tuple[dict[str, dict[str, str]], Optional[Documents]]:
    """``chunking.mode=all``: the corpus as passages and their ``Documents``; otherwise the corpus unchanged and
    None. Token windows use the tokenizer of ``tokenizer_name`` (the bi-encoder's)."""
    if chunking.mode != "all":
        return corpus, None
    if chunking.unit == "tokens" and not tokenizer_name:
        raise ValueError("data.chunking.unit=tokens needs a tokenizer: set the encoder, or chunking.unit=chars.")
    spans = tokenizer_spans(tokenizer_name) if chunking.unit == "tokens" else None
    return chunk_corpus(corpus, chunking, spans)


def folder_spans(corpus: Path, data: DataConfig, encoder: str):
    """The bi-encoder's token spans when ``corpus`` is a text folder chunked in tokens (None otherwise): every
    stage that reads the corpus must cut it into the same passages."""
    chunking = data.chunking
    if corpus.is_dir() and chunking.unit == "tokens" and chunking.mode == "folders":
        return tokenizer_spans(encoder)
    return None
