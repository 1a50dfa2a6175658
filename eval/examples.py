"""Queries to read: those a reranker helped most and hurt most against the best first stage, with the passages
that moved. The report shows them so that a user sees what the figures mean on their own data."""

from __future__ import annotations

from typing import Mapping, Optional

from rerankforge.core.text import doc_text


def _ranks(run: Mapping[str, float]) -> dict[str, int]:
    """1-based rank of each document of one query's run (best score first; ties keep run order)."""
    order = sorted(run, key=lambda d: -run[d])
    return {doc: rank for rank, doc in enumerate(order, 1)}


def _title(corpus: Mapping[str, dict], doc_id: str, words: int = 14) -> str:
    """A document's title, or its first words when it has none, for a reader to recognise it."""
    record = corpus[doc_id] if doc_id in corpus else {}
    text = (record.get("title") or "").strip() or doc_text(record) or doc_id
    cut = text.split()
    return " ".join(cut[:words]) + (" ..." if len(cut) > words else "")


def _example(query_id: str, query: str, qrels: Mapping[str, int], before: Mapping[str, float],
             after: Mapping[str, float], values: tuple[float, float], corpus: Mapping[str, dict]) -> dict:
    ranks_before, ranks_after = _ranks(before), _ranks(after)
    relevant = [d for d, label in qrels.items() if label > 0]
    moved = [{"doc_id": d, "text": _title(corpus, d), "before": ranks_before.get(d), "after": ranks_after.get(d)}
             for d in relevant if d in ranks_before or d in ranks_after]
    top = min(ranks_after, key=ranks_after.get) if ranks_after else None
    return {"query_id": query_id, "query": query, "before": values[0], "after": values[1], "relevant": moved,
            "top_after": None if top is None else {"doc_id": top, "text": _title(corpus, top),
                                                   "relevant": qrels.get(top, 0) > 0}}


def example_queries(qrels: Mapping[str, Mapping[str, int]], queries: Mapping[str, str],
                    corpus: Mapping[str, dict], before: Mapping[str, Mapping[str, float]],
                    after: Mapping[str, Mapping[str, float]], before_values: Mapping[str, float],
                    after_values: Mapping[str, float], n: int = 3) -> Optional[dict]:
    """``{"won": [...], "lost": [...]}``: the ``n`` queries whose metric rose most from the ``before`` run (the
    best first stage) to the ``after`` run (the reranker's final ranking), and the ``n`` it fell most (only queries
    that changed). Each names the query, both values, where each relevant document ranked before and after, and
    the document ranked first after. None when no query changed."""
    deltas = {q: after_values[q] - before_values[q] for q in after_values if q in before_values}
    changed = [q for q in sorted(deltas) if abs(deltas[q]) > 1e-12]
    if not changed:
        return None

    def pick(queries_: list[str]) -> list[dict]:
        return [_example(q, queries.get(q, q), qrels.get(q, {}), before.get(q, {}), after.get(q, {}),
                         (before_values[q], after_values[q]), corpus) for q in queries_]

    won = sorted((q for q in changed if deltas[q] > 0), key=lambda q: -deltas[q])[:n]
    lost = sorted((q for q in changed if deltas[q] < 0), key=lambda q: deltas[q])[:n]
    return {"won": pick(won), "lost": pick(lost)}
