"""`rerankforge push`: the staged folder, its validation, and the errors that promise nothing was uploaded."""

from __future__ import annotations

import json
import math
import socket

import pytest
from conftest import scifact_subset, train_cfg
from huggingface_hub import ModelCard

from rerankforge.models.publish import PushConfig, PushError, push
from rerankforge.train.run import main


def card(folder):
    return ModelCard.load(folder / "README.md")


@pytest.fixture
def trained(mined, beir_dir, tmp_path, tiny_cross_encoder):
    """A tiny trained final/ with dev metrics in its card."""
    return main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "run"))


def test_dry_run_writes_a_folder_that_loads_with_a_complete_card(trained, tmp_path):
    before = (trained / "README.md").read_text()
    message = push(PushConfig(model=str(trained), repo_id="me/tiny", dry_run=True, out=str(tmp_path / "up"),
                              datasets=["me/data"]))
    assert "Dry run" in message and "me/tiny" in message
    staged = card(tmp_path / "up")
    assert staged.data.base_model and staged.data.datasets == ["me/data"] and staged.data.license == "apache-2.0"
    assert staged.data.library_name == "sentence-transformers" and staged.data.pipeline_tag == "text-ranking"
    assert staged.data.eval_results == card(trained).data.eval_results  # the dev figures travel with it
    assert 'CrossEncoder("me/tiny")' in staged.text and str(trained) not in staged.text
    assert staged.data.to_dict()["model-index"][0]["name"] == "tiny"
    assert (tmp_path / "up" / "model.safetensors").exists()
    assert (tmp_path / "up" / "config_sentence_transformers.json").exists()
    assert (trained / "README.md").read_text() == before  # the checkpoint itself is untouched


def test_license_is_the_cards_unless_push_overrides_it(mined, beir_dir, tmp_path, tiny_cross_encoder):
    final = main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "run", "license=mit"))
    push(PushConfig(model=str(final), dry_run=True, out=str(tmp_path / "kept"), datasets=["d"]))
    assert card(tmp_path / "kept").data.license == "mit"
    push(PushConfig(model=str(final), dry_run=True, out=str(tmp_path / "set"), datasets=["d"], license="cc-by-4.0"))
    assert card(tmp_path / "set").data.license == "cc-by-4.0"


def test_a_checkpoint_without_results_is_refused_until_an_eval_report_is_given(mined, beir_dir, tmp_path,
                                                                                 tiny_cross_encoder):
    final = main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "run", "data.dev=null"))
    with pytest.raises(PushError) as err:
        push(PushConfig(model=str(final), dry_run=True, out=str(tmp_path / "up")))
    assert "README.md has no model-index with evaluation results" in str(err.value)
    assert "Train with a dev split" in str(err.value) and "--eval-report runs/.../eval/report.json" in str(err.value)
    assert "metadata lacks datasets (pass --datasets" not in str(err.value)  # mined from a known folder: has one
    report = tmp_path / "eval" / "report.json"
    report.parent.mkdir()
    report.write_text(json.dumps({  # the shape `rerankforge eval` writes, reduced to what the card reads
        "data": {"queries": 2, "sources": {"qrels": str(beir_dir / "qrels" / "test.tsv")}},
        "first_stage": {"method": "bm25", "metrics": {"ndcg@10": 0.25, "mrr@10": 0.2}},
        "rerankers": {"finetuned": {"model": str(final), "depth": 10, "fusion": None,
                                    "metrics": {"ndcg@10": 0.5, "mrr@10": 0.45}}}}))
    before = (final / "README.md").read_text()
    push(PushConfig(model=str(final), dry_run=True, out=str(tmp_path / "up"), eval_report=str(report)))
    got = {(r.dataset_split, r.metric_config, r.metric_type): r.metric_value for r in card(tmp_path / "up").data.eval_results}
    assert got == {("test", "reranked", "ndcg_at_10"): 0.5, ("test", "reranked", "mrr_at_10"): 0.45}
    staged = (tmp_path / "up" / "README.md").read_text()
    assert "alone, nDCG@10 0.5000, above its first stage's 0.2500 (first stage (bm25))" in staged
    assert (final / "README.md").read_text() == before  # merged into the staged copy only
    report.write_text(json.dumps({"rerankers": {}, "first_stage": {}}))
    with pytest.raises(PushError, match="has no reranker whose model is .*Nothing was uploaded"):
        push(PushConfig(model=str(final), dry_run=True, out=str(tmp_path / "up"), eval_report=str(report)))


def test_lora_adapter_is_pushed_as_adapter_or_merged(mined, beir_dir, tmp_path, tiny_cross_encoder):
    final = main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "run", "lora.enabled=true", "lora.r=4",
                           "lora.export=adapter"))
    push(PushConfig(model=str(final), dry_run=True, out=str(tmp_path / "adapter"), datasets=["d"]))
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    assert card(tmp_path / "adapter").data.library_name == "peft"
    assert not (tmp_path / "adapter" / "config_sentence_transformers.json").exists()
    push(PushConfig(model=str(final), dry_run=True, out=str(tmp_path / "merged"), datasets=["d"], lora_export="merged"))
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    assert (tmp_path / "merged" / "model.safetensors").exists()
    assert card(tmp_path / "merged").data.library_name == "sentence-transformers"
    assert (tmp_path / "merged" / "config_sentence_transformers.json").exists()


def test_no_token_is_a_clear_error_and_nothing_is_uploaded(trained, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no stored login either
    with pytest.raises(PushError, match="No Hugging Face token.*Nothing was uploaded"):
        push(PushConfig(model=str(trained), repo_id="me/tiny", out=str(tmp_path / "up"), datasets=["d"]))


def test_no_network_is_a_clear_error_that_claims_nothing(trained, tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: connections are refused
    monkeypatch.setenv("HF_TOKEN", "hf_fake")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    with pytest.raises(PushError, match="Upload to me/tiny failed .*Nothing is claimed uploaded"):
        push(PushConfig(model=str(trained), repo_id="me/tiny", out=str(tmp_path / "up"), datasets=["d"]))


def test_missing_arguments_are_named(tmp_path):
    with pytest.raises(PushError, match="--model <checkpoint folder> and --repo-id"):
        push(PushConfig(model=str(tmp_path)))
    with pytest.raises(PushError, match="is not a folder"):
        push(PushConfig(model=str(tmp_path / "nope"), dry_run=True))


@pytest.mark.slow
def test_scifact_trained_checkpoint_dry_run_loads_in_sentence_transformers_and_transformers(tmp_path):
    from sentence_transformers.cross_encoder import CrossEncoder
    from transformers import AutoModelForSequenceClassification, pipeline

    from rerankforge.data_prep.config import MineConfig, MiningConfig
    from rerankforge.data_prep.mine import mine
    from rerankforge.retrieval.config import DataConfig, EncoderConfig, FirstStageConfig

    subset = scifact_subset(tmp_path / "scifact", n_train=16, n_test=8, n_other=150)
    mined = mine(MineConfig(data=DataConfig(path=str(subset)),
                            first_stage=FirstStageConfig("dense", EncoderConfig(max_seq_length=96)),
                            mining=MiningConfig(range_max=100), output_dir=str(tmp_path / "mined"),
                            cache_dir=str(tmp_path / "cache")))
    final = main(train_cfg(mined, subset, "sentence-transformers/all-MiniLM-L6-v2", tmp_path / "run",
                           "model.max_length=96", "model.max_query_length=32", "data.dev_depth=10", "max_steps=6",
                           "eval_every=null", "optim.lr=2e-4"))
    push(PushConfig(model=str(final), repo_id="me/scifact-reranker", dry_run=True, out=str(tmp_path / "up")))
    staged = card(tmp_path / "up")
    assert staged.data.datasets == ["BeIR/scifact"] or staged.data.datasets == ["scifact"]
    assert 'CrossEncoder("me/scifact-reranker")' in staged.text and staged.data.eval_results
    pair = ("0-dimensional biomaterials show inductive properties.", "Biomaterials with nanoscale features ...")
    ce = float(CrossEncoder(str(tmp_path / "up"), device="cpu").predict([pair])[0])  # sigmoid of the logit
    from transformers import AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "up")
    logit = float(model(**AutoTokenizer.from_pretrained(tmp_path / "up")(*pair, return_tensors="pt")).logits[0, 0])
    assert ce == pytest.approx(1 / (1 + math.exp(-logit)), abs=1e-5)
    assert 0 < pipeline("text-classification", model=str(tmp_path / "up"), device="cpu")(
        {"text": pair[0], "text_pair": pair[1]})["score"] < 1


def test_an_exported_openvino_model_is_checked_and_published_with_the_torch_weights(trained, tmp_path):
    pytest.importorskip("openvino")
    import shutil

    from rerankforge.models.openvino_backend import convert_openvino, save_openvino
    from rerankforge.models.publish import validate
    from rerankforge.models.reranker import Reranker

    exported = tmp_path / "final-openvino"
    shutil.copytree(trained, exported)
    torch_model = Reranker(str(exported), device="cpu")
    save_openvino(convert_openvino(torch_model.model, torch_model._encode), exported, None)
    push(PushConfig(model=str(exported), repo_id="me/ov", dry_run=True, out=str(tmp_path / "up"), datasets=["d"]))
    assert (tmp_path / "up" / "openvino" / "openvino_model.xml").is_file()
    (exported / "openvino" / "openvino_model.xml").write_text("<not a model")
    problems = validate(exported)
    assert len(problems) == 1 and problems[0].startswith(
        "does not load with rerankforge Reranker (backend=openvino, quantize=None): ")
