"""The training objective: a label loss, optionally plus a distillation term against the teacher's scores."""

import pytest
import torch

from rerankforge.core.config import load_config
from rerankforge.train.config import TrainConfig, check_train_config
from rerankforge.train.losses import compute_loss as compute
from rerankforge.train.losses.kl_distill import kl_distill
from rerankforge.train.losses.listwise_ce import listwise_ce
from rerankforge.train.losses.margin_mse import margin_mse

SCORES = torch.tensor([[2.0, 1.0, -1.0], [0.5, 0.7, 0.1]])
TEACHER = torch.tensor([[0.30, 0.25, -0.05], [0.20, 0.28, 0.02]])


def compute_loss(cfg: TrainConfig, scores, teacher):
    return compute(cfg.loss, scores, teacher)


def cfg(*overrides: str) -> TrainConfig:
    return load_config(TrainConfig, None, list(overrides))


def test_label_loss_alone_ignores_the_teacher():
    assert torch.equal(compute_loss(cfg(), SCORES, TEACHER), listwise_ce(SCORES))


def test_distillation_term_is_added_with_its_weight_on_the_scaled_teacher():
    got = compute_loss(cfg("loss.distill=kl_distill", "loss.distill_weight=0.5", "loss.teacher_scale=20",
                           "loss.temperature=2"), SCORES, TEACHER)
    want = listwise_ce(SCORES, temperature=2) + 0.5 * kl_distill(SCORES, TEACHER * 20, temperature=2)
    assert torch.allclose(got, want)
    got = compute_loss(cfg("loss.distill=margin_mse"), SCORES, TEACHER)
    assert torch.allclose(got, listwise_ce(SCORES) + margin_mse(SCORES, TEACHER))
    assert got > listwise_ce(SCORES)


def test_a_distillation_term_without_teacher_scores_names_the_fix():
    with pytest.raises(ValueError, match="loss.teacher=first_stage"):
        compute_loss(cfg("loss.distill=kl_distill"), SCORES, None)


def test_distill_next_to_a_distillation_loss_is_a_config_problem():
    [problem] = check_train_config(cfg("loss.name=kl_distill", "loss.distill=margin_mse"))
    assert "loss.distill=margin_mse" in problem and "listwise_ce" in problem
    [problem] = check_train_config(cfg("loss.distill=kl_distill", "loss.teacher_scale=0"))
    assert "loss.teacher_scale" in problem
