"""Retrieval metrics on BEIR shapes: ``qrels`` and ``run`` are ``{query_id: {doc_id: score}}``.

Computed by ir-measures (trec_eval's definitions); this module only maps our keys (``ndcg@10``, ``mrr@10``,
``recall@100``, ``map``) to its measures. Inputs are never mutated.
"""

from __future__ import annotations

from typing import Iterable

_NAMES = {"ndcg": "nDCG", "mrr": "RR", "recall": "R", "map": "AP", "precision": "P"}


def _measure(key: str):
    import ir_measures

    name, _, cutoff = key.partition("@")
    if name not in _NAMES:
        raise ValueError(f"Unknown metric '{key}'. Use one of {', '.join(_NAMES)}, optionally with @k (e.g. ndcg@10).")
    measure = ir_measures.parse_measure(_NAMES[name])
    return measure @ int(cutoff) if cutoff else measure


def evaluate_run(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]],
                 metrics: Iterable[str] = ("ndcg@10", "mrr@10")) -> dict[str, float]:
    """Mean of each metric over the queries of ``qrels`` (a query missing from ``run`` scores 0)."""
    import ir_measures

    keys = list(metrics)
    measures = {str(_measure(k)): k for k in keys}
    # ir-measures averages over queries present in both; queries the run misses must count as 0.
    per_query = {k: {q: 0.0 for q in qrels} for k in keys}
    for m in ir_measures.iter_calc([_measure(k) for k in keys], qrels, {q: dict(d) for q, d in run.items() if d}):
        if m.query_id in qrels:
            per_query[measures[str(m.measure)]][m.query_id] = m.value
    return {k: sum(v.values()) / max(len(v), 1) for k, v in per_query.items()}
