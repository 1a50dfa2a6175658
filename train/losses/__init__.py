"""Ranking losses: one module per loss in this package, each a pure function of ``scores[B, G]`` (row b is one
group, positive at index 0) and, for distillation losses, ``teacher[B, G]`` in the same layout.

Every module here defines ``LOSS = Loss(...)`` and is registered by being here: adding a loss is adding a file.
``loss.name`` and ``loss.distill`` in a training config name these registrations.
"""

from __future__ import annotations

import importlib
import pkgutil

import torch

from rerankforge.train.config import LossConfig
from rerankforge.train.losses.base import Loss, check_shapes

__all__ = ["LOSSES", "Loss", "check_shapes", "compute_loss"]

def _discover() -> dict[str, Loss]:
    """Every loss module of this package: label losses, then distillation losses, newest paper first."""
    found = [importlib.import_module(f"{__name__}.{module.name}").LOSS
             for module in pkgutil.iter_modules(__path__) if module.name != "base"]
    return {loss.name: loss for loss in sorted(found, key=lambda loss: (loss.teacher, -loss.year))}


LOSSES: dict[str, Loss] = _discover()


def compute_loss(cfg: LossConfig, scores: torch.Tensor, teacher: torch.Tensor | None) -> torch.Tensor:
    """``cfg.name`` on ``scores[B, G]``, plus ``cfg.distill_weight * cfg.distill`` against the teacher when set."""
    label, distill = LOSSES[cfg.name], cfg.distill
    if (label.teacher or distill) and teacher is None:
        raise ValueError(f"loss.name={cfg.name} loss.distill={distill} needs teacher scores, but the training set has "
                         f"none for loss.teacher={cfg.teacher}. Mine with mining.rescore.cross_encoder set, or use "
                         "loss.teacher=first_stage.")
    if teacher is not None:
        teacher = teacher.to(scores.dtype) * cfg.teacher_scale
    label_loss = label(scores, teacher, cfg)
    if distill is None or cfg.distill_weight == 0:
        return label_loss
    return label_loss + cfg.distill_weight * LOSSES[distill](scores, teacher, cfg)
