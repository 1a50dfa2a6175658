"""The dev split: labelled queries held out of training, with their first-stage candidates, in ``dev.jsonl``.

Training reranks these candidates to pick its best checkpoint and to fit the fusion weight; the test split is
never read before ``eval``. Each line: ``query_id, query, qrels {doc_id: relevance}, doc_ids, scores, passages``
(the first-stage top ``dev_depth``, best first, with the first stage's scores).
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from rerankforge.core.metrics import untied

DEV_FILE = "dev.jsonl"
logger = logging.getLogger(__name__)


def carve_dev(query_ids: Sequence[str], fraction: float, min_queries: int, seed: int,
              group: Optional[Callable[[str], Optional[str]]] = None) -> list[str]:
    """A seeded sample of ``query_ids`` to hold out, sorted: ``fraction`` of them but at least ``min_queries``,
    and never more than a quarter (so small data keeps most queries for training). ``fraction=0``: none.

    ``group`` maps a query id to a key (None: its own): queries sharing a key fall on the same side, whole groups
    drawn until the size is reached, so that no dev question was asked of a passage training learns from. When
    no key is shared the sample is the one drawn without ``group``."""
    if fraction <= 0 or len(query_ids) < 4:
        return []
    size = min(max(math.ceil(fraction * len(query_ids)), min_queries), len(query_ids) // 4)
    groups: dict[str, list[str]] = {}
    for query_id in sorted(query_ids):
        key = group(query_id) if group else None
        groups.setdefault(query_id if key is None else f"group:{key}", []).append(query_id)
    rng = random.Random(f"dev:{seed}")
    if len(groups) == len(query_ids):
        return sorted(rng.sample(sorted(query_ids), size))
    held: list[str] = []
    for key in rng.sample(sorted(groups), len(groups)):
        if len(held) >= size:
            break
        if len(held) + len(groups[key]) <= len(query_ids) // 4:  # a group that would pass the cap stays in training
            held += groups[key]
    return sorted(held)


def dev_records(stage, query_ids: list[str], queries: dict[str, str], qrels: dict[str, dict[str, int]], depth: int,
                doc_texts: Sequence[str], documents=None) -> list[dict]:
    """One record per dev query with its first-stage top ``depth`` from ``stage`` (a ``FirstStage``).

    With ``documents`` (a chunked corpus; qrels name documents) the top ``depth`` documents, pooled from passages
    by ``documents.aggregate``, each with the text of its best-ranked passage."""
    if documents is None:
        cands = stage.search([queries[q] for q in query_ids], depth)
        return [{"query_id": q, "query": queries[q], "qrels": qrels[q],
                 "doc_ids": [stage.doc_ids[r] for r in rows.tolist()], "scores": [float(s) for s in scores],
                 "passages": [doc_texts[r] for r in rows.tolist()]}
                for q, rows, scores in zip(query_ids, cands.rows, cands.scores)]
    text_of = dict(zip(stage.doc_ids, doc_texts))
    all_hits = stage.hits([queries[q] for q in query_ids], documents.fetch_depth(depth))
    records = []
    for q, hits in zip(query_ids, all_hits):
        best, pooled = documents.best_passages(hits), documents.pool_hits(hits, depth)
        records.append({"query_id": q, "query": queries[q], "qrels": qrels[q], "doc_ids": [d for d, _ in pooled],
                        "scores": [s for _, s in pooled], "passages": [text_of[best[d]] for d, _ in pooled]})
    return records


def write_dev(path: Path, records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


@dataclass
class DevSet:
    """``pairs[i] = (query_id, doc_id, query, passage)``; ``first_stage`` is the run being reranked."""

    qrels: dict[str, dict[str, int]]
    first_stage: dict[str, dict[str, float]]
    pairs: list[tuple[str, str, str, str]]


def dev_set(records: list[dict], depth: int | None = None, max_queries: int | None = None) -> DevSet:
    """A ``DevSet`` from dev records, each query cut to its first-stage top ``depth``. First-stage scores are
    untied (RRF ties a lot) so the metrics describe the order the records list."""
    qrels, first_stage, pairs = {}, {}, []
    for record in records[:max_queries]:
        q = record["query_id"]
        docs = list(zip(record["doc_ids"], record["scores"], record["passages"]))[:depth]
        qrels[q] = record["qrels"]
        first_stage[q] = untied([(d, s) for d, s, _ in docs])
        pairs += [(q, d, record["query"], p) for d, _, p in docs]
    return DevSet(qrels, first_stage, pairs)


def read_dev(path: Path, depth: int | None = None, max_queries: int | None = None) -> DevSet:
    """The dev set of a mining output (``dev.jsonl``), each query cut to its first-stage top ``depth``."""
    with open(path, encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    written = max((len(r["doc_ids"]) for r in records), default=0)
    if depth and depth > written:
        logger.warning("data.dev_depth=%d, but %s holds the first-stage top %d per dev query: using %d. Mine with "
                       "data.dev_depth=%d to rerank deeper.", depth, path, written, written, depth)
    return dev_set(records, depth, max_queries)
