"""Turn a reranker's logits into probabilities of relevance: Platt scaling fitted on the dev split.

A cross-encoder trained with a ranking loss orders passages well, but the sigmoid of its logit is not P(relevant):
the loss only cares about the gaps between a query's candidates, so the logit's offset and scale drift from one
model to the next. Platt scaling fits ``P(relevant | logit) = sigmoid(a * logit + b)`` by logistic regression of
the dev candidates' labels (a candidate in the qrels is relevant, any other is not) on their logits. Training
writes the fit to ``calibration.json`` beside the checkpoint; ``Reranker``, eval and the server read it, so a
threshold such as ``generate.cutoff.min_probability`` means the same thing for every model.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from rerankforge.models.resolve import checkpoint_file

CALIBRATION_FILE = "calibration.json"


def sigmoid(x: float) -> float:
    """The logistic function, without overflow for large negative inputs."""
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


@dataclass(frozen=True)
class Calibration:
    """``probability(logit) = sigmoid(a * logit + b)``; the identity calibration is ``a=1, b=0``."""

    a: float
    b: float
    method: str = "platt"

    def probability(self, logit: float) -> float:
        return sigmoid(self.a * logit + self.b)


def probability_of(reranker) -> Callable[[float], float]:
    """A reranker's P(relevant) of a logit: its ``probability`` method (calibrated when its checkpoint has a
    ``calibration.json``), or the plain sigmoid for a scorer without one."""
    return getattr(reranker, "probability", None) or sigmoid


def labelled_logits(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]],
                    min_relevance: int = 1) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(logits, labels, query_ids)``, one row per candidate of ``run``: label 1 when the qrels give the
    candidate ``min_relevance`` or more, else 0 (an unjudged candidate counts as not relevant)."""
    logits, labels, owners = [], [], []
    for query_id, scores in run.items():
        judged = qrels.get(query_id, {})
        for doc_id, logit in scores.items():
            logits.append(logit)
            labels.append(int(judged.get(doc_id, 0) >= min_relevance))
            owners.append(query_id)
    return np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=np.int64), owners


def fit_platt(logits: Sequence[float], labels: Sequence[int]) -> Calibration:
    """Platt scaling by scikit-learn's logistic regression (unregularised: one weight and one bias).

    Raises:
        ValueError: the labels are all 0 or all 1 (nothing to separate).
    """
    # scikit-learn takes ~1 s to import; only this path needs it
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(labels)
    if y.min(initial=1) == y.max(initial=0):
        raise ValueError(f"calibration needs relevant and non-relevant dev candidates; got {len(y)} candidates "
                         f"with {int(y.sum())} relevant.")
    model = LogisticRegression(C=1e6, max_iter=1000).fit(np.asarray(logits, dtype=np.float64).reshape(-1, 1), y)
    return Calibration(a=float(model.coef_[0, 0]), b=float(model.intercept_[0]))


def expected_calibration_error(probabilities: Sequence[float], labels: Sequence[int], bins: int = 10) -> float:
    """ECE over ``bins`` equal-width probability bins: the bins' ``|fraction relevant - mean probability|``,
    weighted by their share of the candidates. Written here because scikit-learn has only the per-bin curve
    (``calibration_curve``); the tests check this against it."""
    p, y = np.asarray(probabilities, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    if len(p) == 0:
        return 0.0
    which = np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], p)  # the bin edges calibration_curve uses
    total = 0.0
    for b in np.unique(which):
        members = which == b
        total += members.sum() / len(p) * abs(y[members].mean() - p[members].mean())
    return float(total)


def query_folds(query_ids: Sequence[str], folds: int, seed: int = 0) -> dict[str, int]:
    """A seeded fold number per distinct query, so a query's candidates never span a fit and its check."""
    distinct = sorted(set(query_ids))
    random.Random(f"calibration:{seed}").shuffle(distinct)
    return {q: i % folds for i, q in enumerate(distinct)}


def calibrate(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]], bins: int = 10, folds: int = 5,
              seed: int = 0) -> dict:
    """Fit Platt scaling on a labelled dev run of raw logits; what ``calibration.json`` holds.

    The scale is fitted on every candidate. Its ECE is measured out of fold: each fold of queries is scored by a
    fit on the other folds, so the reported error is not flattered by fitting and measuring on the same pairs.
    ``ece.sigmoid`` is the plain sigmoid's error on the same candidates.

    Raises:
        ValueError: no candidate is relevant, or all are.
    """
    logits, labels, owners = labelled_logits(qrels, run)
    calibration = fit_platt(logits, labels)
    fold_of = query_folds(owners, folds, seed)
    fold = np.asarray([fold_of[q] for q in owners])
    held_out = np.empty(len(logits))
    for k in range(folds):
        inside = fold == k
        if not inside.any():
            continue
        rest = ~inside
        fit = fit_platt(logits[rest], labels[rest]) if 0 < labels[rest].sum() < rest.sum() else calibration
        held_out[inside] = [fit.probability(x) for x in logits[inside]]
    plain = [sigmoid(x) for x in logits]
    return {"method": calibration.method, "a": calibration.a, "b": calibration.b, "dev_pairs": int(len(logits)),
            "dev_positives": int(labels.sum()), "dev_queries": len(set(owners)), "bins": bins,
            "ece": {"sigmoid": expected_calibration_error(plain, labels, bins),
                    "calibrated": expected_calibration_error(held_out, labels, bins)},
            "ece_method": f"{folds}-fold cross-fitted by query, {bins} equal-width bins"}


def read_calibration(model: str | Path) -> Optional[Calibration]:
    """The ``calibration.json`` beside a checkpoint (a folder, or a Hub id's repo), or None when it has none."""
    path = checkpoint_file(str(model), CALIBRATION_FILE)
    if path is None:
        return None
    fitted = json.loads(path.read_text(encoding="utf-8"))
    return Calibration(a=float(fitted["a"]), b=float(fitted["b"]), method=fitted.get("method", "platt"))
