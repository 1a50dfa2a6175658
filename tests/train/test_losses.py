"""Losses against hand-computed values and torch references, on scores[B, G] with the positive at index 0."""

import math
import re
import sys

import pytest
import torch

from rerankforge.core.config import load_config
from rerankforge.train.config import TrainConfig, check_train_config
from rerankforge.train.losses import LOSSES
from rerankforge.train.losses.kl_distill import kl_distill
from rerankforge.train.losses.listwise_ce import listwise_ce
from rerankforge.train.losses.margin_mse import margin_mse
from rerankforge.train.losses.pointwise_bce import pointwise_bce
from rerankforge.train.losses.ranknet import ranknet

S = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.0, 0.0]])
T = torch.tensor([[3.0, 1.0, 0.0], [1.0, 1.0, -1.0]])


def test_listwise_ce_by_hand():
    row0 = -math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-1)))
    row1 = -math.log(math.exp(0.5) / (math.exp(0.5) + math.exp(1) + 1))
    assert listwise_ce(S).item() == pytest.approx((row0 + row1) / 2, rel=1e-6)
    assert listwise_ce(S, temperature=2.0).item() == pytest.approx(listwise_ce(S / 2).item(), rel=1e-6)


def test_pointwise_bce_by_hand_and_pos_weight():
    def bce(x, y, w=1.0):
        p = 1 / (1 + math.exp(-x))
        return -(w * y * math.log(p) + (1 - y) * math.log(1 - p))

    plain = sum(bce(x, 1.0 if j == 0 else 0.0) for row in S.tolist() for j, x in enumerate(row)) / 6
    weighted = sum(bce(x, 1.0 if j == 0 else 0.0, 2.0) for row in S.tolist() for j, x in enumerate(row)) / 6
    assert pointwise_bce(S).item() == pytest.approx(plain, rel=1e-6)
    assert pointwise_bce(S, pos_weight=2.0).item() == pytest.approx(weighted, rel=1e-6)


def test_ranknet_by_hand():
    pairs = [(2.0, 0.0), (2.0, -1.0), (0.5, 1.0), (0.5, 0.0)]
    expected = sum(math.log1p(math.exp(-(p - n))) for p, n in pairs) / 4
    assert ranknet(S).item() == pytest.approx(expected, rel=1e-6)


def test_margin_mse_by_hand():
    student = [2.0, 3.0, -0.5, 0.5]  # s_pos - s_neg per pair
    teacher = [2.0, 3.0, 0.0, 2.0]
    expected = sum((a - b) ** 2 for a, b in zip(student, teacher)) / 4
    assert margin_mse(S, T).item() == pytest.approx(expected, rel=1e-6)
    assert margin_mse(T, T).item() == 0.0


def test_kl_distill_matches_definition_and_is_zero_on_itself():
    p_t, p_s = T.softmax(-1), S.softmax(-1)
    expected = (p_t * (p_t.log() - p_s.log())).sum(-1).mean()
    assert kl_distill(S, T).item() == pytest.approx(expected.item(), rel=1e-5)
    assert kl_distill(T, T).item() == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("loss", [listwise_ce, ranknet, pointwise_bce])
def test_losses_fall_when_the_positive_rises(loss):
    better = S.clone()
    better[:, 0] += 1.0
    assert loss(better) < loss(S)


def test_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"scores must be \[batch, group\] with group >= 2, got shape \(3,\)"):
        listwise_ce(torch.zeros(3))
    with pytest.raises(ValueError, match=r"teacher scores have shape \(2, 2\), expected \(2, 3\)"):
        margin_mse(S, torch.zeros(2, 2))


def test_inputs_are_not_mutated_and_gradients_flow():
    scores = S.clone().requires_grad_(True)
    listwise_ce(scores).backward()
    assert torch.equal(scores.detach(), S) and scores.grad is not None and scores.grad[:, 0].lt(0).all()


def test_every_loss_module_registers_its_loss_and_cites_its_paper():
    assert set(LOSSES) == {"listwise_ce", "pointwise_bce", "ranknet", "margin_mse", "kl_distill"}
    for loss in LOSSES.values():
        doc = sys.modules[loss.fn.__module__].__doc__
        assert re.search(r"\b(19|20)\d\d\b", doc), f"{loss.name}: its module docstring cites no paper"
    assert {name for name, loss in LOSSES.items() if loss.teacher} == {"margin_mse", "kl_distill"}


def test_an_unknown_loss_name_is_a_config_problem_with_the_nearest_name():
    cfg = load_config(TrainConfig, None, ["loss.name=listwise", "loss.distill=ranknet"])
    problems = check_train_config(cfg)
    assert any("loss.name='listwise' is not a loss" in p and "Did you mean 'listwise_ce'?" in p for p in problems)
    assert any("loss.distill=ranknet is a label loss" in p and "kl_distill" in p for p in problems)
