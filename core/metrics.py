"""Retrieval metrics on BEIR shapes: ``qrels`` and ``run`` are ``{query_id: {doc_id: score}}``.

Computed by ir-measures (trec_eval's definitions); this module only maps our keys (``ndcg@10``, ``mrr@10``,
``recall@100``, ``map``) to its measures. Inputs are never mutated.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import ir_measures
import numpy as np

_NAMES = {"ndcg": "nDCG", "mrr": "RR", "recall": "R", "map": "AP", "precision": "P"}


def check_metric(key: str) -> Optional[str]:
    """None when ``key`` is a metric we know (e.g. ``ndcg@10``, ``map``), else what is wrong with it."""
    name, at, cutoff = key.partition("@")
    if name not in _NAMES:
        return f"unknown metric '{key}'. Use one of {', '.join(_NAMES)}, optionally with @k (e.g. ndcg@10)."
    if at and not (cutoff.isdigit() and int(cutoff) > 0):
        return f"bad cutoff in metric '{key}': expected a positive integer after @ (e.g. {name}@10)."
    return None


def _measure(key: str):
    problem = check_metric(key)
    if problem:
        raise ValueError(problem[0].upper() + problem[1:])
    name, _, cutoff = key.partition("@")
    measure = ir_measures.parse_measure(_NAMES[name])
    return measure @ int(cutoff) if cutoff else measure


def per_query(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]],
              metrics: Iterable[str] = ("ndcg@10", "mrr@10")) -> dict[str, dict[str, float]]:
    """``{metric: {query_id: value}}`` for every query of ``qrels`` (a query missing from ``run`` scores 0)."""
    keys = list(metrics)
    measures = {str(_measure(k)): k for k in keys}
    # ir-measures only reports queries present in both; queries the run misses must count as 0.
    values = {k: {q: 0.0 for q in qrels} for k in keys}
    run_copy = {q: dict(d) for q, d in run.items() if d}
    for m in ir_measures.iter_calc([_measure(k) for k in keys], qrels, run_copy):
        if m.query_id in qrels:
            values[measures[str(m.measure)]][m.query_id] = m.value
    return values


def evaluate_run(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]],
                 metrics: Iterable[str] = ("ndcg@10", "mrr@10")) -> dict[str, float]:
    """Mean of each metric over the queries of ``qrels`` (a query missing from ``run`` scores 0)."""
    return {k: sum(v.values()) / max(len(v), 1) for k, v in per_query(qrels, run, metrics).items()}


def paired_test(baseline: dict[str, float], system: dict[str, float]) -> dict[str, float]:
    """Two-sided paired t-test of per-query values over the queries both have (scipy's ``ttest_rel``).

    Returns ``{"delta": mean(system - baseline), "p_value": p, "ci95": [low, high], "wins": n, "losses": n,
    "ties": n}``; ``ci95`` is a 95% bootstrap interval of ``delta`` (``bootstrap_ci``); ``p_value`` is 1.0 when
    every difference is 0.
    """
    # scipy.stats takes ~1 s to import; only significance tests need it
    from scipy.stats import ttest_rel

    queries = sorted(set(baseline) & set(system))
    diffs = [system[q] - baseline[q] for q in queries]
    wins, losses = sum(d > 1e-12 for d in diffs), sum(d < -1e-12 for d in diffs)
    if not queries:
        return {"delta": 0.0, "p_value": 1.0, "ci95": [0.0, 0.0], "wins": 0, "losses": 0, "ties": 0}
    delta = sum(diffs) / len(diffs)
    if wins + losses == 0:
        p_value = 1.0
    else:
        p_value = float(ttest_rel([system[q] for q in queries], [baseline[q] for q in queries]).pvalue)
        p_value = 0.0 if p_value != p_value else p_value  # nan: constant non-zero difference
    return {"delta": delta, "p_value": p_value, "ci95": bootstrap_ci(diffs), "wins": wins, "losses": losses,
            "ties": len(queries) - wins - losses}


def bootstrap_ci(diffs: Sequence[float], resamples: int = 2000, seed: int = 0) -> list[float]:
    """95% percentile-bootstrap interval of the mean of per-query values, usually differences between two runs
    (scipy's ``bootstrap``, seeded, so a report repeats); ``[d, d]`` when every value is the same ``d``."""
    # scipy.stats takes ~1 s to import; only significance tests need it
    from scipy.stats import bootstrap

    if len(set(diffs)) <= 1:
        value = float(diffs[0]) if diffs else 0.0
        return [value, value]
    result = bootstrap((np.asarray(diffs, dtype=float),), np.mean, confidence_level=0.95, n_resamples=resamples,
                       method="percentile", rng=np.random.default_rng(seed))
    return [float(result.confidence_interval.low), float(result.confidence_interval.high)]


TIE_STEP = 1e-6  # visible in TREC files (6 decimals), far below real score gaps (RRF ranks differ by ~3e-4)


def untied(hits: Sequence[tuple[str, float]]) -> dict[str, float]:
    """``hits`` as a run whose scores strictly decrease in the pipeline's order.

    Tied scores (common with RRF) would otherwise be re-ordered by trec_eval's doc-id tie-break, and the metrics
    would describe a ranking the pipeline never produced. A tied score is lowered by ``TIE_STEP`` per tie.
    """
    run, previous = {}, float("inf")
    for doc_id, score in hits:
        previous = min(float(score), previous - TIE_STEP)
        run[doc_id] = previous
    return run
