"""Train a cross-encoder reranker on a ``rerankforge mine`` output.

    accelerate launch train/run.py --config configs/train/scifact-minilm.yaml [key=value ...]
    python train/run.py --config configs/train/scifact-minilm.yaml            # one process, same file
    accelerate launch --multi_gpu --num_processes 2 train/run.py --config ... # 2 processes (no GPU: CPU, gloo)

Reads top to bottom: 1 config, 2 accelerator, 3 data, 4 model, 5 optimizer, 6 prepare, 7 sanity check,
8 resume, 9 loop (accumulate, clip, step, evaluate, checkpoint), 10 final model, card and manifest.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import ProjectConfiguration, set_seed
from tqdm.auto import tqdm
from transformers import get_scheduler

from rerankforge.core import distributed
from rerankforge.core.config import dump_yaml, raise_problems, to_dict
from rerankforge.core.io import git_commit, hash_path, versions, write_json
from rerankforge.models.card import write_model_card, write_st_config
from rerankforge.models.loading import (
    add_lora,
    bf16_is_fast,
    load_seq_cls,
    load_tokenizer,
    usable_positions,
)
from rerankforge.train.attention import set_attention
from rerankforge.train.checkpoint import Progress, next_checkpoint_number, resume_dir, save_checkpoint, save_final
from rerankforge.train.config import PRECISIONS, TrainConfig, check_train_config, position_problems
from rerankforge.train.data import EpochBatches, GroupCollator, load_groups
from rerankforge.train.evaluate import build_dev_set, dev_loader, evaluate, score_dev_windows
from rerankforge.train.fit import BEST_DEV_RUN, FITTED_DEV_RUN, selection_scores, write_calibration, write_fusion
from rerankforge.train.losses import compute_loss
from rerankforge.train.optimizer import adamw, keep_fused_after_resume

logger = logging.getLogger("rerankforge.train")


def group_scores(model, batch: dict, group_size: int) -> torch.Tensor:
    inputs = {k: v for k, v in batch.items() if k != "teacher"}
    return model(**inputs).logits.view(-1, group_size).float()


def sanity_check(model, batch: dict, group_size: int) -> None:
    """One forward pass before training; warn when the scores are (nearly) constant, a common silent failure."""
    with torch.no_grad():
        scores = group_scores(model, batch, group_size)
    if not torch.isfinite(scores).all():
        raise RuntimeError("The first forward pass gave non-finite scores; check the model and its dtype.")
    if scores.std().item() < 1e-6:
        logger.warning("Scores collapse to a constant (%.4g) on the first batch: the head may not see the input "
                       "(check pad_token_id for decoders) or the learning rate is too high.", scores.mean().item())


def set_dropout(model, p: float) -> None:
    """Every ``torch.nn.Dropout`` of ``model`` drops with probability ``p``."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p


def training_steps(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """``max_steps`` (no more than ``max_epochs`` passes when set), or ``epochs`` passes without it."""
    if cfg.max_steps is None:
        return math.ceil(cfg.epochs * steps_per_epoch)
    if cfg.max_epochs is None:
        return cfg.max_steps
    return max(1, min(cfg.max_steps, math.ceil(cfg.max_epochs * steps_per_epoch)))


def resolve_precision(mixed_precision: str) -> str:
    """accelerate's precision name; ``auto`` becomes ``bf16`` on a device where bfloat16 is fast, else ``no``."""
    if PRECISIONS[mixed_precision] != "auto":
        return PRECISIONS[mixed_precision]
    return "bf16" if bf16_is_fast(PartialState().device) else "no"


def tracker_config(cfg: TrainConfig) -> dict:
    """The config as flat dotted keys with scalar values: what tensorboard's hparams accept."""
    flat, todo = {}, [("", to_dict(cfg))]
    while todo:
        prefix, node = todo.pop()
        for key, value in node.items():
            if isinstance(value, dict):
                todo.append((f"{prefix}{key}.", value))
            else:
                plain = isinstance(value, (int, float, str, bool))
                flat[prefix + key] = value if plain else json.dumps(value, default=str)
    return flat


@dataclass
class Run:
    """What the loop works on, built by :func:`setup`: the prepared model, optimizer, schedule and loaders (None
    once :func:`finish` has written ``final/`` and released them)."""

    accelerator: Accelerator
    model: torch.nn.Module
    tokenizer: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    sampler: EpochBatches
    train_dl: torch.utils.data.DataLoader
    dev: Any  # train.evaluate.DevSet, or None without a dev split
    dev_dl: Any
    data_counts: dict
    total_steps: int
    progress: Progress = field(default_factory=Progress)


def main(cfg: TrainConfig) -> Path:
    """Train ``cfg`` and return ``<output_dir>/final``: setup, the loop, then the final model, card and manifest.

    Raises:
        ConfigError: every problem of ``cfg`` at once, before anything is loaded.
    """
    raise_problems(check_train_config(cfg))  # 1. the config, checked before any compute
    run = setup(cfg)
    train_loop(cfg, run)
    # 10. Final model (the best by dev nDCG@10 when there is a dev set), fusion weight, card and manifest.
    run.accelerator.wait_for_everyone()
    if run.accelerator.is_main_process:
        finish(cfg, run)
    run.accelerator.end_training()
    return Path(cfg.output_dir) / "final"


def make_accelerator(cfg: TrainConfig) -> Accelerator:
    """2. Devices, precision and processes come from `accelerate launch` / its config file."""
    precision = {} if cfg.mixed_precision is None else {"mixed_precision": resolve_precision(cfg.mixed_precision)}
    distributed.state()  # on a machine without CUDA, processes started by torchrun join one gloo group
    accelerator = Accelerator(gradient_accumulation_steps=cfg.gradient_accumulation_steps,
                              log_with=cfg.log_with or None, **precision,
                              project_config=ProjectConfiguration(project_dir=cfg.output_dir,
                                                                  automatic_checkpoint_naming=True,
                                                                  total_limit=cfg.keep_checkpoints))
    set_seed(cfg.seed)
    return accelerator


def load_data(cfg: TrainConfig, accelerator: Accelerator):
    """3. Groups from the mining output, the tokenizer that batches them, and the dev split's first stage (built
    on the main process first)."""
    groups, data_counts = load_groups(cfg)
    if not groups:
        raise ValueError(f"No training group of size {cfg.data.group_size} in {cfg.data.train}.")
    tokenizer = load_tokenizer(cfg.model.name_or_path, cfg.model.gguf_file)
    collator = GroupCollator(tokenizer, cfg.model.max_length, cfg.model.max_query_length)
    sampler = EpochBatches([sum(map(len, g.passages)) for g in groups], cfg.batch_size, cfg.seed)
    # its own generator: creating an epoch's iterator draws a seed, which must not move the global RNG that
    # dropout uses, or a resumed run would train differently from an uninterrupted one
    train_dl = torch.utils.data.DataLoader(groups, batch_sampler=sampler, collate_fn=collator,
                                           generator=torch.Generator().manual_seed(cfg.seed))
    dev = None
    if cfg.data.dev:
        with accelerator.main_process_first():
            dev = build_dev_set(cfg.data.train, cfg.data.dev, cfg.data.dev_split, cfg.data.dev_depth,
                                cfg.data.dev_max_queries, data_counts["mine_manifest"]["config"])
        train_queries = {g.query_id for g in groups}
        overlap = sorted(train_queries & set(dev.qrels)) if dev is not None else []
        if overlap:
            raise ValueError(f"{len(overlap)} dev queries are also training queries (e.g. {overlap[:5]}): data.dev="
                             f"{cfg.data.dev} split {cfg.data.dev_split} overlaps {cfg.data.train}. Use data.dev=mined "
                             "(the split mining held out) or a dev split disjoint from the mined queries.")
    return tokenizer, collator, sampler, train_dl, dev, data_counts


def load_model(cfg: TrainConfig, tokenizer, accelerator: Accelerator) -> torch.nn.Module:
    """4. One logit on top of the model, with the attention ``model.attn_implementation`` names; LoRA is a config
    block on the same model."""
    model = load_seq_cls(cfg.model.name_or_path, cfg.model.gguf_file, tokenizer=tokenizer)
    cpu_bf16 = accelerator.device.type == "cpu" and accelerator.mixed_precision == "bf16"
    logger.info("Attention: %s.", set_attention(model, cfg.model.attn_implementation, cpu_bf16))
    if cfg.model.dropout is not None:
        set_dropout(model, cfg.model.dropout)
    if cfg.lora.enabled:
        model = add_lora(model, cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout, cfg.lora.target_modules)
    return model


def setup(cfg: TrainConfig) -> Run:
    """Steps 2-8: accelerator, data, model, optimizer, prepare, sanity check, resume."""
    out = Path(cfg.output_dir)
    accelerator = make_accelerator(cfg)
    tokenizer, collator, sampler, train_dl, dev, data_counts = load_data(cfg, accelerator)
    model = load_model(cfg, tokenizer, accelerator)
    raise_problems(position_problems(cfg.model, usable_positions(model.config)))

    # 5. Optimizer and schedule.
    steps_per_epoch = math.ceil(len(sampler) / accelerator.num_processes / cfg.gradient_accumulation_steps)
    total_steps = training_steps(cfg, steps_per_epoch)
    optimizer = adamw(model, cfg.optim, accelerator.device, grad_scaler=accelerator.scaler is not None)
    scheduler = get_scheduler(cfg.optim.scheduler, optimizer, int(cfg.optim.warmup_ratio * total_steps), total_steps)

    # 6. Prepare; the loop state is checkpointed with the model, optimizer, scheduler and RNGs.
    model, optimizer, train_dl, scheduler = accelerator.prepare(model, optimizer, train_dl, scheduler)
    dev_dl = accelerator.prepare(dev_loader(dev, collator, cfg.batch_size * cfg.data.group_size)) if dev else None
    run = Run(accelerator, model, tokenizer, optimizer, scheduler, sampler, train_dl, dev, dev_dl, data_counts,
              total_steps)
    accelerator.register_for_checkpointing(run.progress)

    # 7. Sanity check before spending compute.
    sanity_check(model, next(iter(train_dl)), cfg.data.group_size)

    # 8. Resume.
    resume = resume_dir(out, cfg.resume_from)
    if resume is not None:
        accelerator.load_state(str(resume))
        keep_fused_after_resume(optimizer)
        accelerator.project_configuration.iteration = int(resume.name.split("_")[-1]) + 1
        accelerator.print(f"Resumed from {resume} at step {run.progress.step}.")
    else:  # an earlier run's checkpoints in this folder: number after them, never over them
        accelerator.project_configuration.iteration = next_checkpoint_number(out)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(dump_yaml(cfg), encoding="utf-8")
        if resume is None:  # a fresh run's curve starts empty; a resumed one continues its own
            (out / "metrics.jsonl").unlink(missing_ok=True)
    accelerator.init_trackers("rerankforge", config=tracker_config(cfg),
                              init_kwargs={"wandb": {"dir": str(out)}})  # wandb/ next to the run, not in the cwd
    return run


def train_step(cfg: TrainConfig, run: Run, batch: dict) -> torch.Tensor:
    """One batch: loss, backward, clip, and (when the accumulation is complete) an optimizer and schedule step.
    Returns the loss."""
    accelerator, model = run.accelerator, run.model
    with accelerator.accumulate(model):
        loss = compute_loss(cfg.loss, group_scores(model, batch, cfg.data.group_size), batch.get("teacher"))
        accelerator.backward(loss)
        if accelerator.sync_gradients and cfg.optim.max_grad_norm:
            accelerator.clip_grad_norm_(model.parameters(), cfg.optim.max_grad_norm)
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad()
    return loss


def evaluates_at(cfg: TrainConfig, step: int, total_steps: int) -> bool:
    """Whether dev is evaluated after optimizer step ``step``: every ``eval_every`` steps from ``eval_delay_ratio``
    of the steps on (rounded up), and at the last step."""
    if step >= total_steps:
        return True
    first = math.ceil(round(cfg.eval_delay_ratio * total_steps, 6))  # 0.55 * 100 is 55.000000000000007
    return bool(cfg.eval_every) and step % cfg.eval_every == 0 and step >= first


def train_loop(cfg: TrainConfig, run: Run) -> None:
    """9. The loop: accumulate, clip, step; evaluate on dev, keep the best, checkpoint; stop early or at the end."""
    accelerator, model, progress, out = run.accelerator, run.model, run.progress, Path(cfg.output_dir)
    model.train()  # from_pretrained returns a model in eval mode: dropout goes on before the first step
    metrics_file = out / "metrics.jsonl"
    bar = tqdm(total=run.total_steps, initial=progress.step, desc="Training",
               disable=not accelerator.is_main_process)
    stop = progress.step >= run.total_steps
    while not stop:
        run.sampler.use_epoch(progress.epoch)
        epoch_dl = (accelerator.skip_first_batches(run.train_dl, progress.batch_in_epoch)
                    if progress.batch_in_epoch else run.train_dl)
        for batch in epoch_dl:
            loss = train_step(cfg, run, batch)
            progress.batch_in_epoch += 1
            if not accelerator.sync_gradients:
                continue
            progress.step += 1
            bar.update(1)
            record = {"step": progress.step, "epoch": progress.epoch,
                      "loss": accelerator.gather(loss.detach()).mean().item(), "lr": run.scheduler.get_last_lr()[0]}
            last = progress.step >= run.total_steps
            if run.dev_dl is not None and evaluates_at(cfg, progress.step, run.total_steps):
                dev_metrics, dev_run = evaluate(model, run.dev_dl, run.dev, accelerator)
                record.update(dev_metrics)
                stop = keep_best(cfg, accelerator, model, run.tokenizer, progress, record["dev/ndcg@10"], dev_run, out)
            log(accelerator, record, metrics_file, bar)
            if cfg.save_every and progress.step % cfg.save_every == 0 and not last:
                save_checkpoint(accelerator)
            if last or stop:
                stop = True
                break
        else:
            progress.epoch, progress.batch_in_epoch = progress.epoch + 1, 0
    bar.close()


def finish(cfg: TrainConfig, run: Run) -> None:
    """``final/`` is the best checkpoint on dev (else the last step), with ``fusion.json`` and
    ``calibration.json`` fitted on its dev scores (read again as windows with ``data.dev_max_passage_tokens``);
    then the manifest. The training state is released once ``final/`` is written."""
    accelerator, dev = run.accelerator, run.dev
    out = Path(cfg.output_dir)
    final = out / "final"
    from_best = dev is not None and (out / "best").exists()
    if not from_best:
        save_final(accelerator.unwrap_model(run.model), run.tokenizer, final, cfg.model.max_length,
                   cfg.lora.export, cfg.model.name_or_path)
    else:
        if final.exists():
            shutil.rmtree(final)
        (out / "best").replace(final)
    release_training_state(run)
    fusion = None
    if dev is not None:
        cut_run = selection_scores(out, dev) if from_best else None
        dev_run = cut_run
        if cfg.data.dev_max_passage_tokens and dev.pairs:
            # bf16 as eval's dtype=auto reads it; fp16 weights (not autocast) could overflow, so float32 there
            dtype = "bfloat16" if accelerator.mixed_precision == "bf16" else None
            # on a CPU, Reranker's bf16 is the autocast selection scored in, so the cut scores stand for first windows
            reuse = cut_run if accelerator.device.type == "cpu" else None
            dev_run = score_dev_windows(final, dev, cfg.data.dev_max_passage_tokens, cfg.model.max_query_length,
                                        accelerator.device, dtype, reuse)
        if dev_run is not None:
            write_json(out / FITTED_DEV_RUN, dev_run)  # the scores fusion.json and calibration.json were fitted on
        fusion = write_fusion(final, dev, dev_run, run.data_counts["mine_manifest"]["config"],
                              cfg.data.dev_max_passage_tokens)
        write_calibration(final, dev, dev_run)
    write_train_manifest(cfg, out, run.data_counts, run.progress, fusion)


def release_training_state(run: Run) -> None:
    """Drop the training model, optimizer, schedule and loaders, and accelerate's references to them: the windows
    pass loads ``final/`` as a second model, which would otherwise share GPU memory with the first."""
    run.model = run.optimizer = run.scheduler = run.train_dl = run.dev_dl = None
    run.accelerator.free_memory()


def keep_best(cfg, accelerator, model, tokenizer, progress: Progress, score: float, dev_run: dict, out: Path) -> bool:
    """Save the best model so far to ``best/`` and its dev scores; True when early stopping says stop."""
    if score > progress.best:
        progress.best, progress.bad_evals = score, 0
        if accelerator.is_main_process:
            save_final(accelerator.unwrap_model(model), tokenizer, out / "best", cfg.model.max_length,
                       cfg.lora.export, cfg.model.name_or_path)
            write_json(out / BEST_DEV_RUN, dev_run)  # beside best/, so a resumed run can still fit fusion
    else:
        progress.bad_evals += 1
    accelerator.wait_for_everyone()
    return bool(cfg.early_stopping_patience and progress.bad_evals >= cfg.early_stopping_patience)


def log(accelerator, record: dict, metrics_file: Path, bar) -> None:
    accelerator.log(record, step=record["step"])
    if accelerator.is_main_process:
        with open(metrics_file, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
        bar.set_postfix({k.replace("dev/", ""): round(v, 4) for k, v in record.items() if k in ("loss", "dev/ndcg@10")},
                        refresh=False)  # drawn at the next update: a log gets a line per mininterval, not per step


def write_train_manifest(cfg: TrainConfig, out: Path, data_counts: dict, progress: Progress,
                         fusion: dict | None = None) -> None:
    manifest = {"stage": "train", "config": to_dict(cfg), "versions": versions(), "git_commit": git_commit(),
                "inputs": {"train": {"path": cfg.data.train, "sha256": hash_path(Path(cfg.data.train) / "dataset")}},
                "counts": {k: v for k, v in data_counts.items() if k != "mine_manifest"},
                "steps": progress.step, "best_dev_ndcg@10": None if progress.best == float("-inf") else progress.best,
                "processes": distributed.state().num_processes,
                "fusion": None if fusion is None else {k: fusion[k] for k in ("method", "alpha", "reranker_alone",
                                                                                "first_stage_alone",
                                                                                "max_passage_tokens")}}
    write_json(out / "manifest.json", manifest)
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()] \
        if (out / "metrics.jsonl").exists() else []
    write_st_config(out / "final")  # CrossEncoder(final) loads it as a saved CrossEncoder, sigmoid activation
    write_model_card(out / "final", cfg, data_counts["mine_manifest"], metrics, fusion)


if __name__ == "__main__":  # `accelerate launch train/run.py --config ...`: the `rerankforge train` command
    from rerankforge.cli import main as rerankforge_main

    sys.exit(rerankforge_main(["train", *sys.argv[1:]]))
