import copy
import json

import numpy as np
import pytest

from rerankforge.models.calibration import (
    CALIBRATION_FILE,
    Calibration,
    calibrate,
    expected_calibration_error,
    fit_platt,
    labelled_logits,
    read_calibration,
    sigmoid,
)


def synthetic(n=4000, a=2.0, b=-3.0, seed=0):
    """Logits whose true P(relevant) is sigmoid(a * logit + b): the plain sigmoid is badly calibrated."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.5, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-(a * logits + b)))).astype(int)
    return logits, labels


def as_run(logits, labels, per_query=20):
    qrels, run = {}, {}
    for i, (x, y) in enumerate(zip(logits, labels)):
        q = f"q{i // per_query}"
        run.setdefault(q, {})[f"d{i}"] = float(x)
        if y:
            qrels.setdefault(q, {})[f"d{i}"] = 1
    return qrels, run


def test_ece_matches_scikit_learns_calibration_curve():
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(1)
    probabilities = rng.random(2000)
    labels = (rng.random(2000) < probabilities ** 2).astype(int)
    true, predicted = calibration_curve(labels, probabilities, n_bins=10, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], probabilities), minlength=10)
    expected = float(np.sum(counts[counts > 0] / len(labels) * np.abs(true - predicted)))
    assert expected_calibration_error(probabilities, labels, bins=10) == pytest.approx(expected, abs=1e-12)
    assert expected_calibration_error([0.9, 0.9], [1, 1]) == pytest.approx(0.1)
    assert expected_calibration_error([], []) == 0.0


def test_platt_recovers_the_scale_that_made_the_labels():
    logits, labels = synthetic()
    fitted = fit_platt(logits, labels)
    assert fitted.a == pytest.approx(2.0, abs=0.25) and fitted.b == pytest.approx(-3.0, abs=0.3)
    assert fitted.probability(1.5) == pytest.approx(sigmoid(fitted.a * 1.5 + fitted.b))
    assert Calibration(1.0, 0.0).probability(0.3) == pytest.approx(sigmoid(0.3))


def test_platt_needs_both_labels():
    with pytest.raises(ValueError, match="got 3 candidates with 0 relevant"):
        fit_platt([0.1, 0.2, 0.3], [0, 0, 0])


def test_calibrated_ece_is_below_the_plain_sigmoids_out_of_fold():
    qrels, run = as_run(*synthetic())
    before = copy.deepcopy((qrels, run))
    fitted = calibrate(qrels, run)
    assert (qrels, run) == before  # inputs untouched
    assert fitted["dev_pairs"] == 4000 and fitted["dev_queries"] == 200
    assert fitted["dev_positives"] == sum(len(v) for v in qrels.values())
    assert fitted["ece"]["calibrated"] < 0.03 < 0.1 < fitted["ece"]["sigmoid"]
    assert "5-fold cross-fitted by query" in fitted["ece_method"]


def test_unjudged_candidates_count_as_not_relevant():
    logits, labels, owners = labelled_logits({"q": {"a": 2, "b": 0}}, {"q": {"a": 1.0, "b": 0.5, "c": -1.0}})
    assert logits.tolist() == [1.0, 0.5, -1.0] and labels.tolist() == [1, 0, 0] and owners == ["q", "q", "q"]


def test_reranker_scores_are_calibrated_probabilities_when_the_checkpoint_has_a_calibration(tiny_cross_encoder,
                                                                                          tmp_path):
    import shutil

    from rerankforge.models.reranker import Reranker

    folder = tmp_path / "model"
    shutil.copytree(tiny_cross_encoder, folder)
    assert read_calibration(folder) is None
    plain = Reranker(str(folder), device="cpu")
    (folder / CALIBRATION_FILE).write_text(json.dumps({"method": "platt", "a": 0.5, "b": -2.0}))
    assert read_calibration(folder) == Calibration(0.5, -2.0)
    calibrated = Reranker(str(folder), device="cpu")
    query, docs = "cat sat", ["the cat sat on the mat", "protein in blood"]
    logits = calibrated.score(query, docs, raw=True)
    assert logits == pytest.approx(plain.score(query, docs, raw=True))
    assert calibrated.score(query, docs) == pytest.approx([sigmoid(0.5 * x - 2.0) for x in logits])
    assert plain.score(query, docs) == pytest.approx([sigmoid(x) for x in logits])
    assert Reranker(str(folder), device="cpu", calibrated=False).score(query, docs) == pytest.approx(
        plain.score(query, docs))
    ranked = calibrated.rerank(query, docs)
    assert [r["relevance_score"] for r in ranked] == sorted(calibrated.score(query, docs), reverse=True)
