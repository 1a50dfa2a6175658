"""Fusion of a reranker with its first stage: the end points reproduce each side exactly, the fitted weight is
picked on dev by the one-standard-error rule (or only breaks ties when dev cannot tell), and a config's `auto`
reads fusion.json."""

import json

import numpy as np
import pytest

from rerankforge.models.fusion import (
    FUSION_FILE,
    MIN_OPEN_QUERIES,
    TIE_BREAK_ALPHA,
    fit_fusion,
    fuse,
    fuse_run,
    one_se_alpha,
    resolve_fusion,
    zscore,
)


def order(scores) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: -scores[i])  # stable, as the pipeline sorts


RERANKER = [0.3, 2.5, -1.0, 2.5, 0.9]  # raw logits, a tie at 1 and 3
FIRST = [0.91, 0.88, 0.80, 0.80, 0.42]  # first-stage scores, best first, a tie at 2 and 3


@pytest.mark.parametrize("method", ["interpolation", "rrf"])
def test_alpha_one_is_the_reranker_and_alpha_zero_the_first_stage(method):
    assert order(fuse(RERANKER, FIRST, method, 1.0)) == order(RERANKER) == [1, 3, 4, 0, 2]
    assert order(fuse(RERANKER, FIRST, method, 0.0)) == [0, 1, 2, 3, 4]


def test_interpolation_is_a_weighted_sum_of_z_scores():
    fused = fuse(RERANKER, FIRST, "interpolation", 0.3)
    assert np.allclose(fused, 0.3 * zscore(RERANKER) + 0.7 * zscore(FIRST))
    assert np.allclose(zscore([2.0, 2.0]), [0.0, 0.0])  # constant: no signal, no NaN


def test_rrf_by_hand():
    fused = fuse([1.0, 3.0, 2.0], [9.0, 8.0, 7.0], "rrf", 0.5, rrf_k=60)
    assert fused[0] == pytest.approx(0.5 / 63 + 0.5 / 61)
    assert fused[1] == pytest.approx(0.5 / 61 + 0.5 / 62)


def test_bad_method_or_alpha_is_an_error():
    with pytest.raises(ValueError, match="fusion method must be one of"):
        fuse([1.0], [1.0], "sum", 0.5)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 1.5"):
        fuse([1.0], [1.0], "rrf", 1.5)


def dev_data(copies: int = 3):
    """Queries where the reranker is right and as many where the first stage is, so a mix wins on all of them."""
    qrels, first, reranker = {}, {}, {}
    for i in range(copies):
        qrels[f"r{i}"], qrels[f"f{i}"] = {"a": 1}, {"y": 1}
        first[f"r{i}"], first[f"f{i}"] = {"a": 0.2, "b": 0.9, "c": 0.5}, {"y": 0.9, "x": 0.3, "z": 0.1}
        reranker[f"r{i}"], reranker[f"f{i}"] = {"a": 5.0, "b": 0.0, "c": 0.1}, {"x": 3.0, "y": 2.9, "z": -4.0}
    return qrels, first, reranker


def test_fit_fusion_finds_a_weight_that_beats_both_ends():
    fitted = fit_fusion(*dev_data(), min_open_queries=3)
    interp = fitted["methods"]["interpolation"]
    assert 0 < interp["alpha"] < 1 and fitted["rule"] == "one_se"
    assert interp["ndcg@10"] == pytest.approx(1.0)  # both positives at rank 1
    assert fitted["reranker_alone"] < 1.0 and fitted["first_stage_alone"] < 1.0
    assert interp["curve"]["1.0"] == fitted["reranker_alone"]
    qrels, first, reranker = dev_data()
    assert fuse_run(first, reranker, "interpolation", 1.0)["r0"]["a"] == max(
        fuse_run(first, reranker, "interpolation", 1.0)["r0"].values())
    assert first == dev_data()[1] and reranker == dev_data()[2]  # inputs untouched


def test_fit_fusion_keeps_the_first_stage_when_two_queries_cannot_tell():
    fitted = fit_fusion(*dev_data(copies=1), min_open_queries=1)
    interp = fitted["methods"]["interpolation"]
    assert 0 < interp["best_alpha"] < 1 and interp["best_ndcg@10"] == pytest.approx(1.0)
    assert interp["alpha"] == 0.0  # one query each way: the mix is within one standard error of either end


def test_fit_fusion_only_breaks_ties_when_too_few_dev_queries_leave_room():
    # the first stage ranks the "f" queries perfectly, so only the 3 "r" queries can show what the reranker adds
    fitted = fit_fusion(*dev_data(), min_open_queries=4)
    assert fitted["rule"] == "tie_break" and fitted["open_queries"] == 3
    assert fitted["method"] == "interpolation" and fitted["alpha"] == TIE_BREAK_ALPHA == 0.05
    assert {m["alpha"] for m in fitted["methods"].values()} == {TIE_BREAK_ALPHA}
    interp = fitted["methods"]["interpolation"]
    assert interp["ndcg@10"] == interp["curve"]["0.05"] and 0 < interp["best_alpha"] < 1  # the curve is kept
    assert fit_fusion(*dev_data())["rule"] == "tie_break"  # the default asks for MIN_OPEN_QUERIES
    assert MIN_OPEN_QUERIES == 20
    assert fit_fusion(*dev_data(), min_open_queries=3)["rule"] == "one_se"


def test_one_se_alpha_takes_the_smallest_weight_within_one_standard_error():
    best = [1.0, 0.8] + [1.0] * 6
    curve = {0.0: [0.5] * 8,  # clearly worse: mean 0.5 vs 0.975
             0.25: [0.7, 1.0] + [1.0] * 6,  # 0.0125 lower on average, but one query up and one down
             0.5: best,
             1.0: [0.9, 0.6] + [0.9] * 6}
    assert one_se_alpha(curve) == (0.5, 0.25)
    assert one_se_alpha({0.0: best, 0.5: list(best)}) == (0.0, 0.0)  # a tie goes to the smaller weight
    assert one_se_alpha({0.3: [0.4]}) == (0.3, 0.3)  # one query: no spread to measure


def test_resolve_fusion_reads_fusion_json(tmp_path):
    (tmp_path / FUSION_FILE).write_text(json.dumps({"method": "rrf", "alpha": 0.4, "methods": {
        "rrf": {"alpha": 0.4}, "interpolation": {"alpha": 0.65}}}))
    assert resolve_fusion(str(tmp_path), "auto", "auto") == ("rrf", 0.4)
    assert resolve_fusion(str(tmp_path), "interpolation", "auto") == ("interpolation", 0.65)
    assert resolve_fusion(str(tmp_path), "auto", "0.25") == ("rrf", 0.25)
    assert resolve_fusion(str(tmp_path), "none", "auto") is None


def test_resolve_fusion_errors_say_what_to_set(tmp_path):
    with pytest.raises(ValueError, match=r"fusion.json, which does not exist .* fusion.method=interpolation "
                                         r"fusion.alpha=0.5"):
        resolve_fusion(str(tmp_path), "auto", "auto")
    with pytest.raises(ValueError, match="fusion.alpha must be 'auto' or a number in \\[0, 1\\], got 'high'"):
        resolve_fusion(str(tmp_path), "interpolation", "high")
    assert resolve_fusion(str(tmp_path), "interpolation", "0.5") == ("interpolation", 0.5)
