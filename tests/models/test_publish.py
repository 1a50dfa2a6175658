"""`rerankforge push`: the staged folder, its validation, and the errors that promise nothing was uploaded."""

from __future__ import annotations

import math
import socket

import pytest

from conftest import scifact_subset, train_cfg
from rerankforge.models.publish import PushConfig, PushError, push, read_card
from rerankforge.train.run import main


@pytest.fixture
def trained(mined, beir_dir, tmp_path, tiny_cross_encoder):
    """A tiny trained final/ with dev metrics in its card."""
    return main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "run"))


def test_dry_run_writes_a_folder_that_loads_with_a_complete_card(trained, tmp_path):
    before = (trained / "README.md").read_text()
    message = push(PushConfig(model=str(trained), repo_id="me/tiny", dry_run=True, out=str(tmp_path / "up"),
                              datasets=["me/data"]))
    assert "Dry run" in message and "me/tiny" in message
    meta, body = read_card(tmp_path / "up")
    assert meta["base_model"] and meta["datasets"] == ["me/data"] and meta["license"] == "apache-2.0"
    assert meta["library_name"] == "sentence-transformers" and meta["pipeline_tag"] == "text-ranking"
    assert "| nDCG@10 |" in body
    assert (tmp_path / "up" / "model.safetensors").exists()
    assert (trained / "README.md").read_text() == before  # the checkpoint itself is untouched


def test_a_checkpoint_without_metrics_or_datasets_is_refused(mined, beir_dir, tmp_path, tiny_cross_encoder):
    final = main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "run", "data.dev=null"))
    with pytest.raises(PushError) as err:
        push(PushConfig(model=str(final), dry_run=True, out=str(tmp_path / "up")))
    assert "no metrics table" in str(err.value)


def test_lora_adapter_is_pushed_as_adapter_or_merged(mined, beir_dir, tmp_path, tiny_cross_encoder):
    final = main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "run", "lora.enabled=true", "lora.r=4",
                           "lora.export=adapter"))
    push(PushConfig(model=str(final), dry_run=True, out=str(tmp_path / "adapter"), datasets=["d"]))
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    assert read_card(tmp_path / "adapter")[0]["library_name"] == "peft"
    push(PushConfig(model=str(final), dry_run=True, out=str(tmp_path / "merged"), datasets=["d"], lora_export="merged"))
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    assert (tmp_path / "merged" / "model.safetensors").exists()


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

    from rerankforge.data_prep.config import DataConfig, EncoderConfig, MineConfig, MiningConfig
    from rerankforge.data_prep.mine import mine

    subset = scifact_subset(tmp_path / "scifact", n_train=16, n_test=8, n_other=150)
    mined = mine(MineConfig(data=DataConfig(path=str(subset)), encoder=EncoderConfig(max_seq_length=96),
                            mining=MiningConfig(range_max=100), output_dir=str(tmp_path / "mined"),
                            cache_dir=str(tmp_path / "cache")))
    final = main(train_cfg(mined, subset, "sentence-transformers/all-MiniLM-L6-v2", tmp_path / "run",
                           "model.max_length=96", "model.max_query_length=32", "data.dev_depth=10", "max_steps=6",
                           "eval_every=null", "optim.lr=2e-4"))
    push(PushConfig(model=str(final), repo_id="me/scifact-reranker", dry_run=True, out=str(tmp_path / "up")))
    meta, _ = read_card(tmp_path / "up")
    assert meta["datasets"] == ["BeIR/scifact"] or meta["datasets"] == ["scifact"]
    pair = ("0-dimensional biomaterials show inductive properties.", "Biomaterials with nanoscale features ...")
    ce = float(CrossEncoder(str(tmp_path / "up"), device="cpu").predict([pair])[0])  # sigmoid of the logit
    from transformers import AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "up")
    logit = float(model(**AutoTokenizer.from_pretrained(tmp_path / "up")(*pair, return_tensors="pt")).logits[0, 0])
    assert ce == pytest.approx(1 / (1 + math.exp(-logit)), abs=1e-5)
    assert 0 < pipeline("text-classification", model=str(tmp_path / "up"), device="cpu")(
        {"text": pair[0], "text_pair": pair[1]})["score"] < 1
