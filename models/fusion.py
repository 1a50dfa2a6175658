"""Fuse a reranker with the first stage it reranks, and fit the weight on a dev split.

``interpolation``: ``alpha * z(reranker logits) + (1 - alpha) * z(first-stage scores)``, each z-scored over one
query's reranked candidates (so a cosine, a BM25 score and an RRF score all land on one scale).
``rrf``: ``alpha / (k + reranker rank) + (1 - alpha) / (k + first-stage rank)``.
``alpha = 1`` is the reranker alone and ``alpha = 0`` the first stage alone, for both methods. Training writes the
fitted weights (or the tie-break weight, when the dev split cannot fit one) to ``fusion.json`` beside the
checkpoint; eval, serve and the model card read it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from rerankforge.core.metrics import per_query, untied
from rerankforge.models.resolve import checkpoint_file

FUSION_FILE = "fusion.json"
METHODS = ("interpolation", "rrf")
ALPHA_GRID = tuple(round(0.05 * i, 2) for i in range(21))
# A dev split where the first stage already ranks nearly every query perfectly (synthetic questions that reuse their
# passage's words) leaves too few queries to weigh the reranker: it then only breaks the first stage's near-ties.
MIN_OPEN_QUERIES = 20
TIE_BREAK_ALPHA = ALPHA_GRID[1]


def zscore(values: Sequence[float]) -> np.ndarray:
    """``(x - mean) / std``; all zeros when the values are constant (then the order is left to the caller)."""
    arr = np.asarray(values, dtype=np.float64)
    std = arr.std()
    return (arr - arr.mean()) / std if std > 0 else np.zeros_like(arr)


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based rank of each value, best (highest) first; ties keep list order."""
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[np.argsort(-values, kind="stable")] = np.arange(1, len(values) + 1)
    return ranks


def fuse(reranker: Sequence[float], first_stage: Sequence[float], method: str, alpha: float,
         rrf_k: int = 60) -> np.ndarray:
    """Fused scores of one query's candidates, in the order given (the first stage's order, best first).

    ``reranker`` are raw logits; ``first_stage`` the first-stage scores (only their order counts for ``rrf``).
    """
    if method not in METHODS:
        raise ValueError(f"fusion method must be one of {list(METHODS)}, got {method!r}.")
    if not 0 <= alpha <= 1:
        raise ValueError(f"fusion alpha must be in [0, 1], got {alpha}.")
    r = np.asarray(reranker, dtype=np.float64)
    if method == "interpolation":
        return alpha * zscore(r) + (1 - alpha) * zscore(first_stage)
    first_ranks = np.arange(1, len(r) + 1, dtype=np.float64)  # candidates arrive in first-stage order
    return alpha / (rrf_k + _ranks(r)) + (1 - alpha) / (rrf_k + first_ranks)


def fuse_run(first_stage: dict[str, dict[str, float]], reranker: dict[str, dict[str, float]], method: str,
             alpha: float, rrf_k: int = 60) -> dict[str, dict[str, float]]:
    """``fuse`` over a run: each query's docs in ``reranker`` fused with their ``first_stage`` scores.
    ``first_stage[q]`` lists its docs best first (dict order); ties in the result keep that order."""
    fused = {}
    for query_id, scores in reranker.items():
        docs = [d for d in first_stage[query_id] if d in scores]  # the first stage's order, best first
        values = fuse([scores[d] for d in docs], [first_stage[query_id][d] for d in docs], method, alpha, rrf_k)
        # ranked as the pipeline ranks it: by fused score, ties in first-stage order
        fused[query_id] = untied(sorted(zip(docs, values.tolist()), key=lambda item: -item[1]))
    return fused


def fuse_request(logits: Sequence[float], first_stage: Sequence[float], fitted: dict) -> tuple[list[float], list[int]]:
    """``fuse`` by a checkpoint's ``fusion.json`` (``fitted``: its method, alpha and rrf_k) for docs in any order (a
    rerank request): ``(fused score of each doc in the order given, the ranking best first)``. The first-stage
    order is read from ``first_stage`` (ties keep the order given), and the ranking breaks ties in it, as
    ``fuse_run`` ranks eval's candidates.

    Raises:
        ValueError: ``logits`` and ``first_stage`` differ in length, or a first-stage score is not finite.
    """
    if len(logits) != len(first_stage):
        raise ValueError(f"first_stage_scores has {len(first_stage)} values for {len(logits)} documents; send one "
                         "first-stage score per document, in the order of the documents.")
    if not np.isfinite(np.asarray(first_stage, dtype=np.float64)).all():
        raise ValueError("first_stage_scores must be finite numbers (no NaN or infinity).")
    order = sorted(range(len(logits)), key=lambda i: -first_stage[i])  # stable: ties keep the order given
    values = fuse([logits[i] for i in order], [first_stage[i] for i in order], fitted["method"],
                  float(fitted["alpha"]), int(fitted.get("rrf_k", 60)))
    fused = [0.0] * len(logits)
    for position, i in enumerate(order):
        fused[i] = float(values[position])
    rank_in_first_stage = {i: position for position, i in enumerate(order)}
    return fused, sorted(range(len(logits)), key=lambda i: (-fused[i], rank_in_first_stage[i]))


def one_se_alpha(per_query_curve: dict[float, Sequence[float]]) -> tuple[float, float]:
    """``(best, chosen)`` alphas of a curve of per-query scores (same queries, same order, for every alpha).

    ``best`` has the highest mean (ties: the smaller alpha); ``chosen`` is the smallest alpha whose mean is within one
    paired standard error of ``best``'s (the one-standard-error rule). A dev split of a few dozen queries cannot
    tell apart weights that close, and the smaller one stays nearer the first stage, which the reranker must not
    make worse."""
    means = {a: float(np.mean(v)) for a, v in per_query_curve.items()}
    best = max(sorted(means), key=lambda a: round(means[a], 10))
    top = np.asarray(per_query_curve[best], dtype=np.float64)

    def standard_error(alpha: float) -> float:
        diff = top - np.asarray(per_query_curve[alpha], dtype=np.float64)
        return float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0

    # best itself always qualifies (its standard error is 0), so a smallest one exists
    return best, next(a for a in sorted(means) if means[a] >= means[best] - standard_error(a))


def fit_fusion(qrels: dict[str, dict[str, int]], first_stage: dict[str, dict[str, float]],
               reranker: dict[str, dict[str, float]], metric: str = "ndcg@10", rrf_k: int = 60,
               min_open_queries: int = MIN_OPEN_QUERIES) -> dict:
    """Try every alpha of ``ALPHA_GRID`` with both methods on a labelled dev run and pick a weight by ``metric``.

    The method is the one with the higher best score; its weight is picked by ``one_se_alpha`` (``rule: one_se``).
    When fewer than ``min_open_queries`` dev queries leave the first stage room to improve (``metric`` below 1),
    the curve is noise: both methods then get ``TIE_BREAK_ALPHA`` and the method is interpolation
    (``rule: tie_break``), so the reranker only reorders candidates the first stage scores nearly alike.
    Returns what ``fusion.json`` holds: ``method``, ``alpha``, ``rule``, ``open_queries``, and per method its
    chosen ``alpha``, ``best_alpha`` and every alpha's mean score (``curve``).
    """
    open_queries = sum(value < 1 - 1e-9 for value in per_query(qrels, first_stage, [metric])[metric].values())
    tie_break, methods = open_queries < min_open_queries, {}
    for method in METHODS:
        scores = {alpha: per_query(qrels, fuse_run(first_stage, reranker, method, alpha, rrf_k), [metric])[metric]
                  for alpha in ALPHA_GRID}
        curve = {alpha: [values[q] for q in qrels] for alpha, values in scores.items()}
        best, chosen = one_se_alpha(curve)
        chosen = TIE_BREAK_ALPHA if tie_break else chosen
        means = {str(a): float(np.mean(v)) for a, v in curve.items()}
        methods[method] = {"alpha": chosen, metric: means[str(chosen)], "best_alpha": best,
                           f"best_{metric}": means[str(best)], "curve": means}
    method = "interpolation" if tie_break else max(METHODS, key=lambda m: methods[m][f"best_{metric}"])
    return {"method": method, "alpha": methods[method]["alpha"], "metric": metric,
            "rule": "tie_break" if tie_break else "one_se", "open_queries": open_queries, "rrf_k": rrf_k,
            "reranker_alone": methods["interpolation"]["curve"]["1.0"],
            "first_stage_alone": methods["interpolation"]["curve"]["0.0"], "methods": methods}


def read_fusion(model: str | Path) -> Optional[dict]:
    """The ``fusion.json`` beside a checkpoint (a folder, or a Hub id's repo), or None when it has none."""
    path = checkpoint_file(str(model), FUSION_FILE)
    return json.loads(path.read_text(encoding="utf-8")) if path is not None else None


def resolve_fusion(model: Optional[str], method: str, alpha: str) -> Optional[tuple[str, float]]:
    """``(method, alpha)`` from a config's ``fusion.method`` / ``fusion.alpha`` (None: no fusion).

    ``method=auto`` takes the fitted method, ``alpha=auto`` the fitted weight, both from ``<model>/fusion.json``.

    Raises:
        ValueError: ``auto`` without a fusion.json, or an alpha that is neither ``auto`` nor a number in [0, 1].
    """
    if method == "none":
        return None
    fitted = read_fusion(model) if model else None
    if "auto" in (method, alpha) and fitted is None:
        raise ValueError(f"fusion.method={method}, fusion.alpha={alpha} reads the weight fitted on the dev split "
                         f"from {model}/{FUSION_FILE}, which does not exist (rerankforge train writes it when the "
                         "training data has a dev split). Set fusion.method=interpolation fusion.alpha=0.5, or "
                         "fusion.method=none.")
    method = fitted["method"] if method == "auto" else method
    if alpha == "auto":
        return method, float(fitted["methods"][method]["alpha"])
    try:
        value = float(alpha)
    except ValueError:
        raise ValueError(f"fusion.alpha must be 'auto' or a number in [0, 1], got {alpha!r}.") from None
    if not 0 <= value <= 1:
        raise ValueError(f"fusion.alpha must be 'auto' or a number in [0, 1], got {alpha!r}.")
    return method, value
