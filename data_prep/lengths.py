"""How much of the queries and documents a reranker reads: token lengths on a sample, against its limits.

A (query, document) pair holds ``max_length`` tokens, special tokens included; the query keeps at most
``max_query_length`` of them and the document the rest (``models/pairs.py``). Whatever lies past those budgets is
never seen by the reranker. ``measure_lengths`` tokenizes a seeded sample with the reranker's own tokenizer and
says, for queries and documents, the median and 95th-percentile length, the budget, the share of texts cut and the
share of their tokens never seen. Documents whose text is mostly unseen are what ``data.chunking.mode=all`` is for.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

SAMPLE = 500  # texts of each kind tokenized: enough for a stable median and p95, ~1 s for abstracts
MAX_CHARS = 50_000  # a longer text is tokenized up to here and its length scaled by its characters
# Chunk documents when more than this share of their tokens lies past the reranker's budget (docs/long-documents.md)
UNSEEN_TO_CHUNK = 0.5


@dataclass(frozen=True)
class LengthStats:
    """Token lengths of ``sampled`` texts of one kind against the ``budget`` the reranker keeps of each."""

    sampled: int
    median: int
    p95: int
    budget: int
    cut: float  # share of the texts longer than the budget
    unseen: float  # share of all their tokens past the budget

    def as_dict(self) -> dict:
        return asdict(self)


def percentile(values: Sequence[int], q: float) -> int:
    """The nearest-rank ``q``-th percentile of ``values`` (0 when empty)."""
    ordered = sorted(values)
    if not ordered:
        return 0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def length_stats(lengths: Sequence[int], budget: int) -> LengthStats:
    """``LengthStats`` of token ``lengths`` against ``budget`` tokens kept of each text."""
    total = sum(lengths)
    beyond = sum(max(0, n - budget) for n in lengths)
    return LengthStats(sampled=len(lengths), median=percentile(lengths, 50), p95=percentile(lengths, 95),
                       budget=budget, cut=sum(1 for n in lengths if n > budget) / len(lengths) if lengths else 0.0,
                       unseen=beyond / total if total else 0.0)


def budgets(max_length: int, max_query_length: int, specials: int, query_tokens: int) -> tuple[int, int]:
    """(query budget, document budget) in tokens, as ``models.pairs.encode_pairs`` fits a pair: the query keeps
    at most ``max_query_length`` and half of what the special tokens leave; the document gets the rest after a
    query of ``query_tokens``."""
    query_budget = min(max_query_length, (max_length - specials) // 2)
    return query_budget, max_length - specials - min(query_tokens, query_budget)


def sample_rows(count: int, size: int = SAMPLE, seed: int = 0) -> list[int]:
    """A seeded sample of at most ``size`` of ``range(count)``, sorted."""
    if count <= size:
        return list(range(count))
    return sorted(random.Random(seed).sample(range(count), size))


def sample(texts: Sequence[str], size: int = SAMPLE, seed: int = 0) -> list[str]:
    """A seeded sample of at most ``size`` of ``texts``, in their order."""
    return [texts[i] for i in sample_rows(len(texts), size, seed)]


def token_lengths(tokenizer, texts: Sequence[str]) -> list[int]:
    """Tokens of each text without special tokens; a text over ``MAX_CHARS`` is scaled from its first ones."""
    heads = [t[:MAX_CHARS] for t in texts]
    ids = tokenizer(heads, add_special_tokens=False, verbose=False)["input_ids"]
    return [round(len(i) * len(t) / len(h)) if len(t) > len(h) else len(i) for i, t, h in zip(ids, texts, heads)]


def measure_lengths(tokenizer, queries: Sequence[str], documents: Sequence[str], max_length: int,
                    max_query_length: int, seed: int = 0) -> dict[str, LengthStats]:
    """``{"queries": ..., "documents": ...}`` on seeded samples, with the budgets of a ``max_length`` pair."""
    query_lengths = token_lengths(tokenizer, sample(queries, seed=seed))
    document_lengths = token_lengths(tokenizer, sample(documents, seed=seed))
    query_budget, document_budget = budgets(max_length, max_query_length, tokenizer.num_special_tokens_to_add(
        pair=True), percentile(query_lengths, 50))
    return {"queries": length_stats(query_lengths, query_budget),
            "documents": length_stats(document_lengths, document_budget)}


def should_chunk(documents: LengthStats) -> bool:
    """Whether most of the documents' text lies past the reranker's budget (then passages are read instead)."""
    return documents.unseen > UNSEEN_TO_CHUNK


def describe(name: str, stats: LengthStats) -> str:
    return (f"{name}: median {stats.median:,} tokens, p95 {stats.p95:,}, against the {stats.budget:,} the reranker "
            f"reads of each; {stats.cut:.0%} are cut, {stats.unseen:.0%} of their text is never seen")


def length_advice(stats: dict[str, LengthStats], keys: dict[str, str], chunking_on: Optional[bool] = None) -> list[str]:
    """One message for documents that are mostly cut and one for queries longer than the query budget (none when
    they fit). ``keys`` spells the config keys: ``chunking`` (e.g. ``data.chunking.mode``), ``max_length`` and
    ``max_query_length``; ``chunking_on``: True when the caller turned chunking on because of these figures."""
    messages = []
    documents, queries = stats["documents"], stats["queries"]
    if chunking_on:
        messages.append(f"Long documents ({describe('documents', documents)}): chunking is on, "
                        f"{keys['chunking']}=all: each document is split into passages, retrieved and reranked by its "
                        f"best passage. Set {keys['chunking']}=off to read each document's opening only.")
    elif should_chunk(documents) or documents.cut > 0.5:
        messages.append(f"Most documents are longer than the reranker reads ({describe('documents', documents)}). "
                        f"Set {keys['chunking']}=all to split them into passages and score each document by its best "
                        f"passage, or raise {keys['max_length']} (a longer input costs more time).")
    if queries.cut > 0.1:
        messages.append(f"Queries are longer than the reranker keeps ({describe('queries', queries)}). Raise "
                        f"{keys['max_query_length']} (it keeps at most half of {keys['max_length']}) to read more of "
                        "each query; the document then gets fewer tokens.")
    return messages
