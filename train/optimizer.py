"""The training loop's optimizer: AdamW over two parameter groups, fused where torch has the kernel."""

from __future__ import annotations

import logging

import torch

from rerankforge.models.loading import head_modules
from rerankforge.train.config import OptimConfig

logger = logging.getLogger("rerankforge.train")


def param_groups(model, lr: float, head_multiplier: float) -> list[dict]:
    """Trainable parameters in two groups: the head modules (a fresh head on a bi-encoder starts from noise, so
    it may learn at ``lr * head_multiplier``) and the rest at ``lr``."""
    heads = tuple(f"{h}." for h in head_modules(model))
    head, body = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (head if any(f".{h}" in f".{name}" for h in heads) else body).append(param)
    return [g for g in ({"params": body, "lr": lr}, {"params": head, "lr": lr * head_multiplier}) if g["params"]]


def adamw(model, optim: OptimConfig, device: torch.device, grad_scaler: bool = False) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`. Fused (one kernel for every parameter, the same update) when
    ``optim.fused`` is true, or when it is null, no GradScaler scales the loss (fp16 on CUDA) and torch has the
    kernel for ``device`` (CPU and CUDA, torch >= 2.4); otherwise torch's default (foreach on CUDA, a loop on CPU).
    Fused, the quickstart's step took 0.93x the time on an AMX Xeon (``bench/step_time.py --baseline
    optim.fused=false``). Not by default with a GradScaler: the fused kernel then skips an overflowing step itself,
    so accelerate never sees the skip and the learning-rate schedule advances anyway."""
    fused = optim.fused
    if fused is None:
        fused = not grad_scaler and device.type in ("cpu", "cuda") and torch.__version__ >= "2.4"
    elif fused and grad_scaler:
        logger.warning("optim.fused=true with fp16's GradScaler: a step the scaler skips for overflow still "
                       "advances the learning-rate schedule. Set optim.fused=null to keep the schedule exact.")
    return torch.optim.AdamW(param_groups(model, optim.lr, optim.head_lr_multiplier),
                             weight_decay=optim.weight_decay, fused=fused or None)


def keep_fused_after_resume(optimizer) -> None:
    """A loaded optimizer state brings the saving run's ``fused`` into every parameter group; keep this run's, which
    its step (and a GradScaler's) was set up for."""
    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper holds the torch optimizer
    for group in inner.param_groups:
        group["fused"] = inner.defaults["fused"]
