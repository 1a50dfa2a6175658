"""Localized contrastive estimation: the positive against its group of hard negatives.

Gao, Dai and Callan, "Rethink Training of BERT Rerankers in Multi-Stage Retrieval Pipeline", ECIR 2021.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rerankforge.train.losses.base import Loss, check_shapes


def listwise_ce(scores: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Softmax cross-entropy of the positive (index 0) against its group."""
    check_shapes(scores)
    target = torch.zeros(scores.size(0), dtype=torch.long, device=scores.device)
    return F.cross_entropy(scores / temperature, target)


LOSS = Loss("listwise_ce", listwise_ce, 2021, options=("temperature",))
