"""Retrieval metrics against hand-computed values (trec_eval definitions), and the paired test."""

import copy

import pytest

from rerankforge.core.metrics import check_metric, evaluate_run, paired_test, per_query

QRELS = {"q1": {"d1": 1, "d3": 2}, "q2": {"d9": 1}, "q3": {"d4": 1}}
RUN = {"q1": {"d1": 0.9, "d2": 0.8, "d3": 0.7}, "q2": {"d5": 1.0}}  # q3 retrieved nothing


def test_metrics_match_hand_computed_values():
    # q1: DCG@3 = 1/log2(2) + 2/log2(4) = 2; ideal = 2/log2(2) + 1/log2(3) = 2.6309 -> 0.76019. q2, q3: 0.
    # AP(q1) = (1/1 + 2/3) / 2 = 0.8333. recall@2(q1) = 1/2. RR(q1) = 1. Means over all 3 qrels queries.
    got = evaluate_run(QRELS, RUN, ["ndcg@3", "mrr@10", "recall@2", "map", "ndcg@1"])
    assert got == pytest.approx({"ndcg@3": 0.76019 / 3, "mrr@10": 1 / 3, "recall@2": 0.5 / 3, "map": 0.83333 / 3,
                                 "ndcg@1": 1 / 2 / 3}, abs=1e-4)


def test_per_query_counts_a_missing_query_as_zero_and_inputs_stay_untouched():
    qrels, run = copy.deepcopy(QRELS), copy.deepcopy(RUN)
    values = per_query(qrels, run, ["mrr@10"])
    assert values == {"mrr@10": {"q1": 1.0, "q2": 0.0, "q3": 0.0}}
    assert qrels == QRELS and run == RUN


def test_metric_names_are_checked():
    assert check_metric("ndcg@10") is None and check_metric("map") is None
    assert "unknown metric 'bleu'" in check_metric("bleu")
    assert "bad cutoff" in check_metric("ndcg@0")
    with pytest.raises(ValueError, match="Unknown metric 'p@5'"):
        evaluate_run(QRELS, RUN, ["p@5"])


def test_paired_t_test_by_hand():
    # differences [0.5, 0, 0]: mean 1/6, sd 0.2887, t = 1.0 with 2 df -> two-sided p = 0.4226
    result = paired_test({"a": 0.0, "b": 0.5, "c": 1.0}, {"a": 0.5, "b": 0.5, "c": 1.0})
    assert result["delta"] == pytest.approx(1 / 6)
    assert result["p_value"] == pytest.approx(0.42265, abs=1e-4)
    assert (result["wins"], result["losses"], result["ties"]) == (1, 0, 2)
    assert paired_test({"a": 0.3}, {"a": 0.3})["p_value"] == 1.0
