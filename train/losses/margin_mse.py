"""Margin-MSE: the student learns the teacher's score margins between the positive and each negative.

Hofstätter et al., "Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge Distillation",
arXiv:2010.02666, 2020.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rerankforge.train.losses.base import Loss, check_shapes


def margin_mse(scores: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MSE between the student's and the teacher's margins ``s_pos - s_neg``."""
    check_shapes(scores, teacher)
    return F.mse_loss(scores[:, :1] - scores[:, 1:], teacher[:, :1] - teacher[:, 1:])


LOSS = Loss("margin_mse", margin_mse, 2020, teacher=True)
