"""Pointwise binary cross-entropy on each (query, passage) logit, as monoBERT trains.

Nogueira and Cho, "Passage Re-ranking with BERT", arXiv:1901.04085, 2019.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from rerankforge.train.losses.base import Loss, check_shapes


def pointwise_bce(scores: torch.Tensor, pos_weight: Optional[float] = None) -> torch.Tensor:
    """Binary cross-entropy on every logit; the positive's term is weighted by ``pos_weight``.

    With G-1 negatives per positive, ``pos_weight = G-1`` balances the two classes.
    """
    check_shapes(scores, min_group=1)
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    weight = None if pos_weight is None else torch.tensor(pos_weight, dtype=scores.dtype, device=scores.device)
    return F.binary_cross_entropy_with_logits(scores, labels, pos_weight=weight)


LOSS = Loss("pointwise_bce", pointwise_bce, 2019, options=("pos_weight",))
