"""Picking the first stage without labels: pseudo-labels from a judge's choices, agreement, ties, and
`rerankforge eval` with first_stage.method=auto end to end."""

from __future__ import annotations

import json

import pytest
from conftest import eval_cfg

from rerankforge.core.config import ConfigError
from rerankforge.eval.pick import agreement, choose, judge_first_stages, pseudo_qrels
from rerankforge.eval.run import evaluate


def test_each_questions_best_scored_doc_becomes_its_one_relevant_doc():
    pools = {"q0": ["a", "b", "c"], "q1": ["d", "e"], "q2": []}
    assert pseudo_qrels(pools, {"q0": [0.1, 0.9, 0.3], "q1": [2.0, 2.0], "q2": []}) == {"q0": {"b": 1}, "q1": {"d": 1}}


def test_the_stage_that_ranks_the_judges_choices_first_wins_and_ties_go_to_hybrid():
    pseudo = {"q0": {"a": 1}, "q1": {"d": 1}}
    runs = {"bm25": {"q0": {"x": 2.0, "a": 1.0}, "q1": {"y": 2.0, "d": 1.0}},
            "dense": {"q0": {"a": 2.0, "x": 1.0}, "q1": {"d": 2.0, "y": 1.0}},
            "hybrid": {"q0": {"a": 2.0, "x": 1.0}, "q1": {"y": 2.0, "d": 1.0}}}
    scores = agreement(runs, pseudo)
    assert scores["dense"] == 1.0 and scores["bm25"] < scores["hybrid"] < 1.0 and choose(scores) == "dense"
    assert choose({"bm25": 0.5, "dense": 0.5, "hybrid": 0.5}) == "hybrid"
    assert choose({"bm25": 0.6, "dense": 0.6, "hybrid": 0.5}) == "bm25"


def test_a_judge_that_reads_meaning_picks_the_stage_that_finds_what_it_prefers():
    texts = {"lex": "cats sat", "sem": "felines rested", "other": "stock prices", "more": "bond yields"}

    def search_all(questions):  # BM25 matches the words, dense the meaning
        return {"bm25": [[("lex", 3.0), ("other", 1.0), ("sem", 0.5)]] * len(questions),
                "dense": [[("sem", 0.9), ("lex", 0.8), ("more", 0.1)]] * len(questions),
                "hybrid": [[("lex", 0.03), ("sem", 0.03), ("other", 0.01)]] * len(questions)}

    calls = []

    def judge(question, passages):
        calls.append(passages)
        return [1.0 if "felines" in p else 0.0 for p in passages]

    scores = judge_first_stages(["where did the cat sit", "what did the cat do"], search_all, judge, texts, pool=2)
    assert choose(scores) == "dense" and scores["dense"] == 1.0
    assert calls[0] == ["cats sat", "stock prices", "felines rested"]  # the union of both top-2s, BM25's first


def test_eval_with_method_auto_picks_a_first_stage_by_the_judge_and_says_why(beir_dir, tiny_encoder,
                                                                             tiny_cross_encoder, tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("cat sat on the mat\n\nprotein in the blood of mice\ndogs run for food\n")
    out = tmp_path / "eval"
    evaluate(eval_cfg(beir_dir, tiny_encoder, tiny_cross_encoder, out, "first_stage.method=auto",
                      f"retrieve.pick.queries={log}", "retrieve.pick.judge=tiny", "generate.kind=none",
                      "plots=false"))
    report = json.loads((out / "report.json").read_text())
    method, why = report["first_stage"]["method"], report["first_stage"]["why"]
    assert method in ("bm25", "dense", "hybrid")
    assert why.startswith("its ranking agreed best with the tiny reranker's choices among the BM25 and dense "
                          f"candidates of 3 unlabelled questions ({log}; nDCG@10 against them: {method} ")
    assert f"Why this first stage: {why}." in (out / "report.md").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["first_stage"]["method"] == method and manifest["inputs"]["pick_queries"]["sha256"]


def test_method_auto_needs_questions_and_a_judge_with_a_model(beir_dir, tiny_encoder, tiny_cross_encoder, tmp_path):
    with pytest.raises(ConfigError) as err:
        evaluate(eval_cfg(beir_dir, tiny_encoder, tiny_cross_encoder, tmp_path / "eval", "first_stage.method=auto",
                          "retrieve.pick.judge=none"))
    message = str(err.value)
    assert "first_stage.method=auto picks the first stage on unlabelled questions: set retrieve.pick.queries" in message
    assert "retrieve.pick.judge='none' must name a reranker with a model; rerankers here: ['tiny']." in message


def test_serve_refuses_a_pipeline_whose_first_stage_is_still_to_be_picked(tmp_path):
    from rerankforge.serve.app import load_pipeline

    config = tmp_path / "pipeline.yaml"
    config.write_text("retrieve:\n  method: auto\n")
    with pytest.raises(ConfigError, match="first_stage.method=auto is picked by `rerankforge eval`"):
        load_pipeline(str(config))
