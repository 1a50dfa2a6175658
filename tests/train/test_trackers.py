"""Trackers (through accelerate) and the checks that run before the first step."""

from __future__ import annotations

import logging

import pytest
import torch
from conftest import train_cfg

from rerankforge.train.run import main


def test_tensorboard_logs_the_loss_and_dev_metrics(mined, beir_dir, tmp_path, tiny_cross_encoder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    main(train_cfg(mined, beir_dir, tiny_cross_encoder, out, "log_with=[tensorboard]"))
    events = list(out.rglob("events.out.tfevents.*"))
    assert events, f"no tensorboard event file under {out}"
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"loss", "dev/ndcg@10", "dev/mrr@10"} <= set(tags), tags
    assert [e.step for e in acc.Scalars("dev/ndcg@10")] == [2, 4]


def test_wandb_offline_writes_a_local_run_next_to_the_output(mined, beir_dir, tmp_path, tiny_cross_encoder,
                                                             monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    main(train_cfg(mined, beir_dir, tiny_cross_encoder, out, "log_with=[wandb]"))
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb")), list((out / "wandb").iterdir())
    assert not (tmp_path / "wandb").exists()  # nothing dropped in the working directory


def test_unknown_or_missing_tracker_is_a_config_error_with_the_pip_command(monkeypatch):
    import rerankforge.train.config as config
    from rerankforge.train.config import TrainConfig, check_train_config

    problems = check_train_config(TrainConfig(log_with=["wandbb"]))
    assert problems == ["log_with has 'wandbb'; expected any of ['wandb', 'tensorboard']."]
    monkeypatch.setattr(config, "is_installed", lambda name: False)
    [problem] = check_train_config(TrainConfig(log_with=["tensorboard"]))
    assert "pip install tensorboard" in problem and "rerankforge[track]" in problem


def test_constant_scores_on_the_first_batch_raise_a_sanity_warning(tiny_cross_encoder, caplog):
    from conftest import DOCS, QUERY
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rerankforge.train.run import sanity_check

    model = AutoModelForSequenceClassification.from_pretrained(tiny_cross_encoder, num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(tiny_cross_encoder)
    batch = dict(tokenizer([QUERY] * 4, DOCS + DOCS[:1], padding=True, return_tensors="pt"))
    with caplog.at_level(logging.WARNING, logger="rerankforge.train"):
        sanity_check(model, batch, group_size=2)
    assert not caplog.records  # a healthy model: no warning
    with torch.no_grad():
        model.classifier.weight.zero_()  # the head ignores the input: every pair gets the bias
    with caplog.at_level(logging.WARNING, logger="rerankforge.train"):
        sanity_check(model, batch, group_size=2)
    assert "Scores collapse to a constant" in caplog.text


def test_non_finite_first_scores_stop_before_training(tiny_cross_encoder):
    from conftest import DOCS, QUERY
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rerankforge.train.run import sanity_check

    model = AutoModelForSequenceClassification.from_pretrained(tiny_cross_encoder, num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(tiny_cross_encoder)
    with torch.no_grad():
        model.classifier.bias.fill_(float("nan"))
    batch = dict(tokenizer([QUERY] * 2, DOCS[:2], padding=True, return_tensors="pt"))
    with pytest.raises(RuntimeError, match="non-finite scores"):
        sanity_check(model, batch, group_size=2)
