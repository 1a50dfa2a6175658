"""What training fits on the kept checkpoint's dev scores: which scores it may reuse, and the calibration."""

import json

import pytest


def test_selection_scores_are_used_only_when_they_cover_the_dev_split(tmp_path):
    from rerankforge.core.dev_split import DevSet
    from rerankforge.train.fit import BEST_DEV_RUN, selection_scores

    dev = DevSet(qrels={"q": {"a": 1}}, first_stage={"q": {"a": 1.0, "b": 0.5}},
                 pairs=[("q", "a", "query", "passage a"), ("q", "b", "query", "passage b")])
    assert selection_scores(tmp_path, dev) is None  # never saved
    (tmp_path / BEST_DEV_RUN).write_text(json.dumps({"q": {"a": 0.3}}))
    assert selection_scores(tmp_path, dev) is None  # another dev set's scores
    (tmp_path / BEST_DEV_RUN).write_text(json.dumps({"q": {"a": 0.3, "b": 0.1}}))
    assert selection_scores(tmp_path, dev) == {"q": {"a": 0.3, "b": 0.1}}


def test_write_calibration_fits_the_dev_logits_and_beats_the_plain_sigmoid(tmp_path):
    import numpy as np

    from rerankforge.core.dev_split import DevSet
    from rerankforge.models.calibration import expected_calibration_error, labelled_logits, sigmoid
    from rerankforge.train.fit import write_calibration

    rng = np.random.default_rng(0)
    run = {f"q{q}": {f"d{d}": float(rng.normal(0, 2)) for d in range(30)} for q in range(40)}
    qrels = {q: {d: 1 for d, x in docs.items() if rng.random() < sigmoid(1.5 * x - 4)} for q, docs in run.items()}
    fitted = write_calibration(tmp_path, DevSet(qrels, {}, []), run)
    assert json.loads((tmp_path / "calibration.json").read_text()) == fitted
    logits, labels, _ = labelled_logits(qrels, run)
    assert fitted["dev_pairs"] == 1200 and fitted["dev_positives"] == labels.sum()
    assert fitted["ece"]["sigmoid"] == pytest.approx(expected_calibration_error([sigmoid(x) for x in logits], labels))
    assert fitted["a"] == pytest.approx(1.5, abs=0.4) and fitted["ece"]["calibrated"] < fitted["ece"]["sigmoid"] / 3
