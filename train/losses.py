"""Ranking losses as small pure functions of ``scores[B, G]``: row b is one group, positive at index 0.

``teacher[B, G]`` (same layout) holds a teacher's scores for the distillation losses. Every function returns a
scalar mean over the batch and raises ``ValueError`` on a shape it cannot use.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F


def _check(scores: torch.Tensor, teacher: Optional[torch.Tensor] = None, min_group: int = 2) -> None:
    if scores.dim() != 2 or scores.size(1) < min_group:
        raise ValueError(f"scores must be [batch, group] with group >= {min_group}, got shape {tuple(scores.shape)}.")
    if teacher is not None and teacher.shape != scores.shape:
        raise ValueError(f"teacher scores have shape {tuple(teacher.shape)}, expected {tuple(scores.shape)}.")


def listwise_ce(scores: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Softmax cross-entropy of the positive against its group (localized contrastive estimation)."""
    _check(scores)
    target = torch.zeros(scores.size(0), dtype=torch.long, device=scores.device)
    return F.cross_entropy(scores / temperature, target)


def pointwise_bce(scores: torch.Tensor, pos_weight: Optional[float] = None) -> torch.Tensor:
    """Binary cross-entropy on every (query, passage) logit; the positive's term is weighted by ``pos_weight``.

    With G-1 negatives per positive, ``pos_weight = G-1`` balances the two classes.
    """
    _check(scores, min_group=1)
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    weight = None if pos_weight is None else torch.tensor(pos_weight, dtype=scores.dtype, device=scores.device)
    return F.binary_cross_entropy_with_logits(scores, labels, pos_weight=weight)


def ranknet(scores: torch.Tensor) -> torch.Tensor:
    """Pairwise logistic loss ``log(1 + exp(-(s_pos - s_neg)))`` averaged over every (positive, negative) pair."""
    _check(scores)
    return F.softplus(scores[:, 1:] - scores[:, :1]).mean()


def margin_mse(scores: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MSE between the student's and the teacher's margins ``s_pos - s_neg`` (Hofstätter et al., 2020)."""
    _check(scores, teacher)
    return F.mse_loss(scores[:, :1] - scores[:, 1:], teacher[:, :1] - teacher[:, 1:])


def kl_distill(scores: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(teacher || student) of the softmax distributions over each group, scaled by ``temperature**2``."""
    _check(scores, teacher)
    log_student = F.log_softmax(scores / temperature, dim=-1)
    log_teacher = F.log_softmax(teacher / temperature, dim=-1)
    return F.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean") * temperature**2


LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "listwise_ce": listwise_ce,
    "pointwise_bce": pointwise_bce,
    "ranknet": ranknet,
    "margin_mse": margin_mse,
    "kl_distill": kl_distill,
}
NEEDS_TEACHER = {"margin_mse", "kl_distill"}
