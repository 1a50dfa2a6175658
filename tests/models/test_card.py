"""The model card: a ``huggingface_hub.ModelCard`` whose ``model-index`` holds the training run's dev figures and
those of ``rerankforge eval`` reports; calibration, license and repo id in its text; and the sentence-transformers
config that makes ``CrossEncoder(folder)`` load a checkpoint as a saved CrossEncoder."""

from __future__ import annotations

import json
import logging
import math
import shutil
import warnings

import pytest
import yaml
from conftest import train_cfg
from huggingface_hub import ModelCard

from rerankforge.core.config import load_config
from rerankforge.models.card import (
    CardError,
    add_eval_results,
    load_card,
    set_model_id,
    write_model_card,
    write_st_config,
)
from rerankforge.train.config import TrainConfig
from rerankforge.train.run import main

MINE = {"config": {"data": {"path": "/data/scifact", "split": "train", "dev_depth": 20}, "encoder": {"name_or_path": "enc"},
                   "mining": {"candidates": "hybrid", "range_max": 100, "num_negatives": 7}},
        "counts": {"queries_mined": 90, "rows": 100, "queries_dev": 10}}
METRICS = [{"step": 2, "loss": 1.0, "dev/ndcg@10": 0.51, "dev/mrr@10": 0.41, "dev/first_stage_ndcg@10": 0.55,
            "dev/first_stage_mrr@10": 0.45},
           {"step": 4, "loss": 0.5, "dev/ndcg@10": 0.6123456789, "dev/mrr@10": 0.5123, "dev/first_stage_ndcg@10": 0.55,
            "dev/first_stage_mrr@10": 0.45},
           {"step": 5, "loss": 0.4}]
FUSION = {"method": "interpolation", "alpha": 0.35, "metric": "ndcg@10", "reranker_alone": 0.6123456789,
          "first_stage_alone": 0.55, "dev_queries": 10, "first_stage": {"method": "hybrid"},
          "methods": {"interpolation": {"alpha": 0.35, "ndcg@10": 0.6543}, "rrf": {"alpha": 0.5, "ndcg@10": 0.6}}}


def cfg(*overrides: str) -> TrainConfig:
    return load_config(TrainConfig, None, ["model.name_or_path=org/base-model", "data.train=runs/mine/scifact",
                                           *overrides])


def figures(card: ModelCard) -> dict:
    """``{(split, variant, metric type): value}`` of the card's model-index."""
    return {(r.dataset_split, r.metric_config, r.metric_type): r.metric_value for r in card.data.eval_results}


def all_figures(folder) -> dict:
    """``figures`` of every result, baselines included: the ``eval_results.json`` beside the card."""
    rows = json.loads((folder / "eval_results.json").read_text())
    return {(r["dataset_split"], r["metric_config"], r["metric_type"]): r["metric_value"] for r in rows}


def report(model: str, qrels: str = "/data/scifact/qrels/test.tsv", fused: bool = True) -> dict:
    """A report.json as `rerankforge eval` writes it (only the keys the card reads, plus a baseline)."""
    finetuned = {"model": model, "depth": 20, "threshold": None, "metrics": {"ndcg@10": 0.75, "mrr@10": 0.72,
                                                                            "recall@100": 0.95}}
    if fused:
        finetuned.update(fusion={"method": "interpolation", "alpha": 0.5},
                         alone={"metrics": {"ndcg@10": 0.74, "mrr@10": 0.71, "recall@100": 0.95}})
    return {"data": {"queries": 300, "sources": {"corpus": "/data/scifact/corpus.jsonl", "qrels": qrels}},
            "first_stage": {"method": "hybrid", "top_k": 100, "metrics": {"ndcg@10": 0.7165, "mrr@10": 0.68,
                                                                          "recall@100": 0.95}},
            "baseline": "none", "rerankers": {"none": {"model": None, "depth": 100, "metrics": {}},
                                              "finetuned": finetuned}}


def test_card_parses_and_its_model_index_holds_only_the_models_own_dev_figures(tmp_path):
    written = write_model_card(tmp_path / "final", cfg(), MINE, METRICS, FUSION)
    card = ModelCard.load(tmp_path / "final" / "README.md")
    assert str(card) == str(written)
    assert figures(card) == {("train", "reranked", "ndcg_at_10"): 0.6123456789,
                             ("train", "reranked", "mrr_at_10"): 0.5123}
    assert all_figures(tmp_path / "final") == {
        ("train", "first_stage", "ndcg_at_10"): 0.55, ("train", "first_stage", "mrr_at_10"): 0.45,
        ("train", "reranked", "ndcg_at_10"): 0.6123456789, ("train", "reranked", "mrr_at_10"): 0.5123,
        ("train", "fused", "ndcg_at_10"): 0.6543}
    front = yaml.safe_load((tmp_path / "final" / "README.md").read_text().split("---")[1])
    result = front["model-index"][0]["results"][0]
    assert front["model-index"][0]["name"] == "base-model-scifact-reranker"
    assert result["task"]["type"] == "text-ranking"
    # held-out training queries are named for what they are, not as the data set's dev split
    assert result["dataset"] == {"name": "scifact: 10 train queries held out of training",
                                 "type": "BeIR/scifact", "split": "train"}
    assert {"type": "ndcg_at_10", "value": 0.6123456789, "name": "nDCG@10, reranked (top-20 of hybrid, step 4)",
            "config": "reranked"} in result["metrics"]
    assert front["base_model"] == "org/base-model" and front["datasets"] == ["BeIR/scifact"]
    assert front["license"] == "apache-2.0" and front["pipeline_tag"] == "text-ranking"
    assert "| nDCG@10 | 0.5500 | 0.6123 | 0.6543 |" in card.text
    for kept in ("enc", "range_max=100", "listwise_ce", "groups of 8", "seed 42", "LoRA: no", "alpha 0.35",
                 "Intended use and limitations"):
        assert kept in card.text, kept
    assert "/data/scifact" not in card.text and "runs/mine" not in card.text  # no local paths
    assert ("alone, nDCG@10 0.6123, above its first stage's 0.5500 (first stage (hybrid)); fused with the first "
            "stage by `fusion.json`: 0.6543.") in card.text


def test_limitations_say_where_the_model_alone_is_below_its_first_stage(tmp_path):
    below = [{**m, "dev/first_stage_ndcg@10": 0.7} for m in METRICS]
    card = write_model_card(tmp_path / "f", cfg(), MINE, below, FUSION)
    limits = card.text.split("## Intended use and limitations")[1]
    assert "alone, nDCG@10 0.6123, below its first stage's 0.7000" in limits
    assert "first_stage_scores=" in limits  # and what to do about it


def test_a_beir_folder_dev_split_is_named_by_its_folder_and_split(tmp_path):
    card = write_model_card(tmp_path / "f", cfg("data.dev=/data/nfcorpus", "data.dev_split=test"), MINE, METRICS)
    assert {(r.dataset_type, r.dataset_split, r.dataset_name) for r in card.data.eval_results} == {
        ("BeIR/nfcorpus", "test", "nfcorpus test")}
    assert "fused" not in {k[1] for k in all_figures(tmp_path / "f")}  # no fusion weight, no fused figure


def test_without_dev_metrics_the_card_has_no_model_index_and_says_how_to_get_one(tmp_path):
    write_model_card(tmp_path / "f", cfg(), MINE, [{"step": 4, "loss": 0.5}])
    card = ModelCard.load(tmp_path / "f" / "README.md")
    assert not card.data.eval_results and "model-index" not in (tmp_path / "f" / "README.md").read_text()
    assert "No evaluation is recorded yet" in card.text and "--eval-report" in card.text


def test_license_comes_from_the_config(tmp_path):
    write_model_card(tmp_path / "f", cfg("license=mit"), MINE, METRICS)
    assert ModelCard.load(tmp_path / "f" / "README.md").data.license == "mit"


def test_snippet_loads_the_repo_id_when_known_else_the_local_path(tmp_path):
    local = write_model_card(tmp_path / "final", cfg(), MINE, METRICS)
    assert f'CrossEncoder("{tmp_path / "final"}")' in local.text and 'CrossEncoder("final")' not in local.text
    hub = write_model_card(tmp_path / "final", cfg(), MINE, METRICS, repo_id="me/scifact-reranker")
    assert 'CrossEncoder("me/scifact-reranker")' in hub.text and str(tmp_path) not in hub.text
    assert hub.data.model_name == "scifact-reranker"
    moved = set_model_id(local, "you/other")
    assert 'CrossEncoder("you/other")' in moved.text and moved.data.to_dict()["model-index"][0]["name"] == "other"


def test_calibration_is_stated_when_calibration_json_exists_and_uncalibrated_otherwise(tmp_path):
    plain = write_model_card(tmp_path / "f", cfg(), MINE, METRICS)
    assert "Scores are uncalibrated" in plain.text and "P(relevant)" not in plain.text
    (tmp_path / "f" / "calibration.json").write_text(json.dumps({
        "method": "platt", "a": 0.8123, "b": -1.25, "dev_pairs": 200, "dev_positives": 12, "bins": 10,
        "ece": {"sigmoid": 0.2345, "calibrated": 0.0312}, "ece_method": "equal-width bins"}))
    calibrated = write_model_card(tmp_path / "f", cfg(), MINE, METRICS)
    assert "uncalibrated" not in calibrated.text
    assert "P(relevant) = sigmoid(0.8123 × logit + -1.2500)" in calibrated.text
    assert "0.2345 for the plain sigmoid, 0.0312 calibrated" in calibrated.text
    assert "`relevance_score` estimates P(relevant)" in calibrated.text and "200 dev" in calibrated.text


def test_an_eval_report_joins_the_model_index_and_tables_once(tmp_path):
    folder = tmp_path / "runs" / "qs" / "train" / "final"
    write_model_card(folder, cfg(), MINE, METRICS, FUSION)
    path = tmp_path / "eval" / "report.json"
    path.parent.mkdir()
    path.write_text(json.dumps(report("runs/qs/train/final")))  # relative: written where eval ran
    add_eval_results(folder, path)
    card = add_eval_results(folder, path)  # twice: still one copy
    assert card.text == ModelCard.load(folder / "README.md").text
    assert {k: v for k, v in figures(ModelCard.load(folder / "README.md")).items() if k[0] == "test"} == {
        ("test", "reranked", "ndcg_at_10"): 0.74, ("test", "reranked", "mrr_at_10"): 0.71,
        ("test", "reranked", "recall_at_100"): 0.95}
    got = all_figures(folder)
    assert {k: v for k, v in got.items() if k[0] == "test"} == {
        ("test", "first_stage", "ndcg_at_10"): 0.7165, ("test", "first_stage", "mrr_at_10"): 0.68,
        ("test", "first_stage", "recall_at_100"): 0.95, ("test", "reranked", "ndcg_at_10"): 0.74,
        ("test", "reranked", "mrr_at_10"): 0.71, ("test", "reranked", "recall_at_100"): 0.95,
        ("test", "fused", "ndcg_at_10"): 0.75, ("test", "fused", "mrr_at_10"): 0.72,
        ("test", "fused", "recall_at_100"): 0.95}
    assert got[("train", "reranked", "ndcg_at_10")] == 0.6123456789  # the dev figures stay
    assert len(card.data.eval_results) == 2 + 3 and len(got) == 5 + 9
    assert "- scifact test (300 queries) (split `test`): alone, nDCG@10 0.7400, above its first stage's 0.7165" \
        in card.text.split("## Intended use and limitations")[1]
    assert card.text.count("## Intended use and limitations") == 1
    assert "It was trained on labelled pairs from one domain" in card.text and "query–positive rows" in card.text
    assert card.text.count("## Evaluation results") == 1 and card.text.count("**scifact test (300 queries)**") == 1
    assert "| nDCG@10 | 0.7165 | 0.7400 | 0.7500 |" in card.text and "| Recall@100 |" in card.text
    assert "| 0.9500 |\n\n## Score calibration\n" in card.text  # the redrawn section keeps the layout
    test_entry = [r for r in card.data.eval_results if r.dataset_split == "test"][0]
    assert test_entry.dataset_type == "BeIR/scifact" and test_entry.task_type == "text-ranking"


def test_a_report_without_fusion_has_no_fused_figures_and_split_comes_from_its_manifest(tmp_path):
    folder = tmp_path / "final"
    write_model_card(folder, cfg(), MINE, [])
    path = tmp_path / "eval" / "report.json"
    path.parent.mkdir()
    path.write_text(json.dumps(report(str(folder), qrels="/x/qrels.tsv", fused=False)))
    (path.parent / "manifest.json").write_text(json.dumps({"config": {"data": {"path": "/d/fiqa", "split": "dev"}}}))
    card = add_eval_results(folder, path)
    assert all_figures(folder) == {
        ("dev", "first_stage", "ndcg_at_10"): 0.7165, ("dev", "first_stage", "mrr_at_10"): 0.68,
        ("dev", "first_stage", "recall_at_100"): 0.95, ("dev", "reranked", "ndcg_at_10"): 0.75,
        ("dev", "reranked", "mrr_at_10"): 0.72, ("dev", "reranked", "recall_at_100"): 0.95}
    assert set(figures(card)) == {("dev", "reranked", k) for k in ("ndcg_at_10", "mrr_at_10", "recall_at_100")}
    assert {r.dataset_type for r in card.data.eval_results} == {"BeIR/fiqa"}
    assert "No evaluation is recorded yet" not in card.text and "| MRR@10 | 0.6800 | 0.7200 |" in card.text


def test_a_report_of_another_model_is_refused_naming_what_it_holds(tmp_path):
    folder = tmp_path / "final"
    write_model_card(folder, cfg(), MINE, METRICS)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report("runs/other/final")))
    with pytest.raises(CardError, match=r"has no reranker whose model is .*final; its rerankers are: none "
                                        r"\(None\), finetuned \(runs/other/final\)\. Pass the report"):
        add_eval_results(folder, path)
    assert add_eval_results(folder, path, reranker="finetuned").data.eval_results  # picked by name instead
    path.write_text(json.dumps({"rows": []}))
    with pytest.raises(CardError, match="is not a `rerankforge eval` report.json"):
        add_eval_results(folder, path)
    with pytest.raises(CardError, match="Cannot read the eval report .*nope.json"):
        add_eval_results(folder, tmp_path / "nope.json")


def test_a_card_whose_metadata_does_not_parse_is_a_card_error_naming_the_file(tmp_path):
    (tmp_path / "README.md").write_text("---\nmodel-index:\n- results: [{task: {}}]\n---\n# x\n")
    with pytest.raises(CardError, match=r"README.md has a metadata block that does not parse: .*Fix the YAML"):
        load_card(tmp_path)
    (tmp_path / "README.md").write_text("---\nlicense: [mit\n---\n# x\n")
    with pytest.raises(CardError, match="does not parse"):
        load_card(tmp_path)
    assert load_card(tmp_path / "none") is None


def _load_quietly(folder, caplog):
    from sentence_transformers import CrossEncoder

    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO, "sentence_transformers"):
        warnings.simplefilter("always")
        model = CrossEncoder(str(folder), device="cpu")
    return model, [str(w.message) for w in caught], caplog.records


def test_st_config_makes_crossencoder_load_a_saved_crossencoder_with_sigmoid(tiny_cross_encoder, tmp_path, caplog):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tmp_path / "final"
    shutil.copytree(tiny_cross_encoder, folder)
    written = write_st_config(folder)
    assert {p.name for p in written} >= {"config_sentence_transformers.json"}
    config = json.loads((folder / "config_sentence_transformers.json").read_text())
    assert config["model_type"] == "CrossEncoder" and config["activation_fn"] == "torch.nn.modules.activation.Sigmoid"
    import sentence_transformers

    assert config["__version__"]["sentence_transformers"] == sentence_transformers.__version__
    model, warned, records = _load_quietly(folder, caplog)
    assert isinstance(model.activation_fn, torch.nn.Sigmoid)
    assert not [r for r in records if r.levelno >= logging.WARNING] and not warned
    messages = " ".join(r.getMessage() for r in records)
    if int(sentence_transformers.__version__.split(".")[0]) >= 6:  # read as a saved CrossEncoder, not a bare model
        assert (folder / "modules.json").exists() and (folder / "sentence_bert_config.json").exists()
        assert "Loading CrossEncoder model" in messages and "No modules.json" not in messages
    pair = ("cat sat on the mat", "the cat sat")
    auto = AutoModelForSequenceClassification.from_pretrained(folder)
    with torch.no_grad():
        logit = float(auto(**AutoTokenizer.from_pretrained(folder)(*pair, return_tensors="pt")).logits[0, 0])
    assert float(model.predict([pair])[0]) == pytest.approx(1 / (1 + math.exp(-logit)), abs=1e-5)


def test_st_config_is_not_written_into_a_lora_adapter_folder(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    assert write_st_config(tmp_path) == [] and not (tmp_path / "config_sentence_transformers.json").exists()


def test_training_writes_the_card_and_st_config_into_final(mined, beir_dir, tmp_path, tiny_cross_encoder, caplog):
    final = main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "run", "license=cc-by-4.0"))
    card = ModelCard.load(final / "README.md")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    kept = max((r for r in records if "dev/ndcg@10" in r), key=lambda r: r["dev/ndcg@10"])
    assert set(figures(card)) == {("test", "reranked", "ndcg_at_10"), ("test", "reranked", "mrr_at_10")}
    got = all_figures(final)
    assert got[("test", "reranked", "ndcg_at_10")] == kept["dev/ndcg@10"]
    assert got[("test", "first_stage", "mrr_at_10")] == kept["dev/first_stage_mrr@10"]
    fusion = json.loads((final / "fusion.json").read_text())
    assert got[("test", "fused", "ndcg_at_10")] == fusion["methods"][fusion["method"]]["ndcg@10"]
    # 4 dev queries are too few to fit a weight: the card says the reranker only breaks ties, and how many were open
    assert fusion["rule"] == "tie_break" and f"alpha {fusion['alpha']:.2f}" in card.text
    assert f"a tie-break weight: only {fusion['open_queries']} of {fusion['dev_queries']} dev queries" in card.text
    assert card.data.license == "cc-by-4.0" and f'CrossEncoder("{final}")' in card.text
    assert ("Scores are uncalibrated" in card.text) != (final / "calibration.json").exists()
    model, warned, logged = _load_quietly(final, caplog)
    assert model.activation_fn.__class__.__name__ == "Sigmoid"
    assert not [r for r in logged if r.levelno >= logging.WARNING and "config" in r.getMessage().lower()]
