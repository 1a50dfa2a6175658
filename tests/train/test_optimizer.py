"""The training optimizer: AdamW's two groups, fused where torch has the kernel, and what a resume keeps."""

import pytest
import torch

from rerankforge.train.config import OptimConfig
from rerankforge.train.optimizer import adamw, keep_fused_after_resume

FUSED_ON_CPU = torch.__version__ >= "2.4"


def tiny_model(tiny_cross_encoder):
    from rerankforge.models.loading import load_seq_cls

    return load_seq_cls(tiny_cross_encoder)


def test_the_head_learns_at_lr_times_the_multiplier_and_the_body_at_lr(tiny_cross_encoder):
    model = tiny_model(tiny_cross_encoder)
    optimizer = adamw(model, OptimConfig(lr=1e-4, head_lr_multiplier=10), torch.device("cpu"))
    body, head = optimizer.param_groups
    assert body["lr"] == 1e-4 and head["lr"] == pytest.approx(1e-3)
    head_ids = {id(p) for p in model.classifier.parameters()} | {id(p) for p in model.bert.pooler.parameters()}
    assert {id(p) for p in head["params"]} == head_ids
    assert len(body["params"]) + len(head["params"]) == len(list(model.parameters()))


def test_adamw_is_fused_on_cpu_by_default_and_torchs_default_when_turned_off(tiny_cross_encoder):
    model = tiny_model(tiny_cross_encoder)
    default = adamw(model, OptimConfig(), torch.device("cpu"))
    turned_off = adamw(model, OptimConfig(fused=False), torch.device("cpu"))
    assert all(g["fused"] is (True if FUSED_ON_CPU else None) for g in default.param_groups)
    assert all(g["fused"] is None and g["foreach"] is None for g in turned_off.param_groups)


@pytest.mark.skipif(not FUSED_ON_CPU, reason="torch < 2.4 has no fused AdamW on CPU")
def test_with_a_grad_scaler_adamw_is_not_fused_by_default_and_asking_for_it_warns(tiny_cross_encoder, caplog):
    model = tiny_model(tiny_cross_encoder)
    default = adamw(model, OptimConfig(), torch.device("cpu"), grad_scaler=True)
    assert all(g["fused"] is None for g in default.param_groups) and not caplog.text
    asked = adamw(model, OptimConfig(fused=True), torch.device("cpu"), grad_scaler=True)
    assert all(g["fused"] is True for g in asked.param_groups)
    assert "optim.fused=true with fp16's GradScaler" in caplog.text


@pytest.mark.skipif(not FUSED_ON_CPU, reason="torch < 2.4 has no fused AdamW on CPU")
def test_a_resumed_state_keeps_this_runs_fused_choice(tiny_cross_encoder):
    model = tiny_model(tiny_cross_encoder)
    saved = adamw(model, OptimConfig(fused=False), torch.device("cpu"))
    model(input_ids=torch.tensor([[101, 7, 8, 102]])).logits.sum().backward()
    saved.step()
    resumed = adamw(model, OptimConfig(), torch.device("cpu"))
    resumed.load_state_dict(saved.state_dict())
    assert all(g["fused"] is None for g in resumed.param_groups)  # what torch's load does
    keep_fused_after_resume(resumed)
    assert all(g["fused"] is True for g in resumed.param_groups)
    resumed.step()  # the fused kernel runs on the loaded moments
