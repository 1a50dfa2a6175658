"""Knowledge distillation: KL divergence from the teacher's softmax over a group to the student's.

Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network", arXiv:1503.02531, 2015.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rerankforge.train.losses.base import Loss, check_shapes


def kl_distill(scores: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(teacher || student) of the softmax distributions over each group, scaled by ``temperature**2``."""
    check_shapes(scores, teacher)
    log_student = F.log_softmax(scores / temperature, dim=-1)
    log_teacher = F.log_softmax(teacher / temperature, dim=-1)
    return F.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean") * temperature**2


LOSS = Loss("kl_distill", kl_distill, 2015, teacher=True, options=("temperature",))
