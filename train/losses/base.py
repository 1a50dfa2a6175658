"""What a loss is: a pure function of the group scores, whether it needs a teacher, and which ``loss.*`` options
it takes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch


@dataclass(frozen=True)
class Loss:
    """``fn(scores[, teacher], **options)`` returns a scalar mean over the batch.

    ``year``: of the paper its module cites; lists of losses put the newest first.
    ``teacher``: the loss imitates the teacher's scores (a distillation loss, usable as ``loss.distill``).
    ``options``: the ``loss.*`` config keys passed to ``fn`` as keyword arguments.
    """

    name: str
    fn: Callable[..., torch.Tensor]
    year: int
    teacher: bool = False
    options: tuple[str, ...] = ()

    def __call__(self, scores: torch.Tensor, teacher: Optional[torch.Tensor], cfg) -> torch.Tensor:
        args = (scores, teacher) if self.teacher else (scores,)
        return self.fn(*args, **{option: getattr(cfg, option) for option in self.options})


def check_shapes(scores: torch.Tensor, teacher: Optional[torch.Tensor] = None, min_group: int = 2) -> None:
    """``ValueError`` unless ``scores`` is ``[batch, group >= min_group]`` and ``teacher`` has its shape."""
    if scores.dim() != 2 or scores.size(1) < min_group:
        raise ValueError(f"scores must be [batch, group] with group >= {min_group}, got shape {tuple(scores.shape)}.")
    if teacher is not None and teacher.shape != scores.shape:
        raise ValueError(f"teacher scores have shape {tuple(teacher.shape)}, expected {tuple(scores.shape)}.")
