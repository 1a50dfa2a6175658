"""RankNet's pairwise logistic loss over every (positive, negative) pair of a group.

Burges et al., "Learning to Rank using Gradient Descent", ICML 2005.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rerankforge.train.losses.base import Loss, check_shapes


def ranknet(scores: torch.Tensor) -> torch.Tensor:
    """``log(1 + exp(-(s_pos - s_neg)))`` averaged over every (positive, negative) pair."""
    check_shapes(scores)
    return F.softplus(scores[:, 1:] - scores[:, :1]).mean()


LOSS = Loss("ranknet", ranknet, 2005)
