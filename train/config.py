"""The schema of training configs (``configs/train/*.yaml``); hardware and precision come from accelerate."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Literal, Optional

from rerankforge.core.extras import is_installed, missing_extra_message


@dataclass
class ModelConfig:
    """The model to fine-tune: any HF encoder or decoder, as sequence classification with one logit."""

    # where training starts (Hub id or local folder): a bi-encoder (it gets a fresh head), a pretrained
    # cross-encoder, or a previous rerankforge checkpoint
    name_or_path: str = "sentence-transformers/all-MiniLM-L6-v2"
    gguf_file: Optional[str] = None  # a .gguf file inside name_or_path, loaded through transformers
    max_length: int = 256  # tokens of each (query, passage) pair, the passage cut to fit; saved with the model
    max_query_length: int = 64  # queries longer than this are cut first; passages take the rest
    # Sets the p of every torch.nn.Dropout in the model (null keeps its own, 0.1 for BERTs). 0 trains faster on
    # CPU, where dropout's random masks over the attention maps cost about as much as the matmuls (bench/README.md).
    dropout: Optional[float] = None
    # auto: the model's own (sdpa), with the attention of bf16 training steps on a CPU in float32, whose backward
    # is ~1.8x as fast there (bench/attention.py, bench/step_time.py). Or any transformers attn_implementation
    # (sdpa, eager, flash_attention_2). Training only: a saved checkpoint loads with transformers' default.
    attn_implementation: str = "auto"


@dataclass
class LoraConfig:
    """LoRA through peft. Head modules (classifier / score / pooler) are always trained and saved."""

    enabled: bool = False  # train LoRA adapters instead of every weight
    r: int = 16  # the adapters' rank: higher trains more parameters
    alpha: int = 32  # the adapters' scale: their update is multiplied by alpha / r
    dropout: float = 0.05  # dropout on the adapters' inputs
    # the modules that get adapters: [all-linear] (every linear layer but the head) or module names, e.g. [query, value]
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    # final/ holds merged: a plain model with the adapters folded in; adapter: the adapters only, naming the base model
    # (not with model.gguf_file: a GGUF base exports merged only)
    export: Literal["adapter", "merged"] = "merged"


@dataclass
class TrainDataConfig:
    """The mined training set, and the dev split that picks the best checkpoint and fits the fusion weight."""

    train: str = "runs/mine/scifact"  # a `rerankforge mine` output folder
    group_size: int = 8  # 1 positive + group_size - 1 negatives
    max_rows: Optional[int] = None  # train on the first N groups only (quick runs); null: all
    # mined: the split mining held out (<train>/dev.jsonl); a BEIR folder whose dev_split is reranked; or null: no dev
    # evaluation (final/ is then the last step, and no fusion weight is fitted)
    dev: Optional[str] = "mined"
    dev_split: str = "dev"  # only for a BEIR folder in `dev`
    dev_depth: int = 100  # first-stage candidates reranked per dev query; use the depth eval will rerank
    dev_max_queries: Optional[int] = None  # evaluate on the first N dev queries only (faster); null: all
    # The kept checkpoint's dev scores, which fit the fusion weight and calibration, read a passage past max_length
    # as windows up to this many tokens (its best window), as eval's rerankers.<name>.max_passage_tokens does: set
    # the same number. null: cut, as checkpoint selection reads them (cheaper: selection reads dev every eval_every)
    dev_max_passage_tokens: Optional[int] = None


@dataclass
class LossConfig:
    """The training loss: a label loss, and optionally a distillation term; each names a module of
    ``train/losses/``."""

    # the label loss: listwise_ce, pointwise_bce or ranknet, or a loss that imitates a teacher (margin_mse, kl_distill)
    name: str = "listwise_ce"
    temperature: float = 1.0  # listwise_ce, kl_distill: scores are divided by this before the softmax (lower: sharper)
    pos_weight: Optional[float] = None  # pointwise_bce: the positive's weight (group_size - 1 balances); null: 1
    # which scores the distillation losses imitate: rescore (mining.rescore's cross-encoder), judge (mining.judge's
    # LLM; its log-odds z-scored per group) or first_stage
    teacher: Literal["first_stage", "rescore", "judge"] = "rescore"
    # A distillation term added to the label loss `name`: loss = name + distill_weight * distill(scores, teacher);
    # margin_mse or kl_distill, or null: none.
    distill: Optional[str] = None
    distill_weight: float = 1.0  # the distillation term's weight (see distill)
    # the teacher's scores are multiplied by this first; a first-stage or judge teacher is z-scored per group, so
    # this is the logit gap the student learns per standard deviation of the teacher's score
    teacher_scale: float = 1.0


@dataclass
class OptimConfig:
    """AdamW and its learning-rate schedule."""

    lr: float = 5e-5  # the peak learning rate
    head_lr_multiplier: float = 1.0  # the head modules (classifier, pooler, score) train at lr * this
    weight_decay: float = 0.01  # AdamW's decoupled weight decay
    warmup_ratio: float = 0.1  # share of the steps the learning rate rises linearly from 0 (linear and cosine)
    # after warmup, linear: decay to 0; cosine: cosine decay to 0; constant: lr throughout, no warmup
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    max_grad_norm: float = 1.0  # gradients are clipped to this total norm; 0: no clipping
    # torch's fused AdamW (one kernel for all parameters; the same update): null uses it where torch has it for the
    # device (CPU and CUDA, torch >= 2.4), except with fp16's GradScaler (CUDA), where the schedule would advance
    # on the steps the scaler skips; false: torch's default (foreach on CUDA, a loop over parameters on CPU)
    fused: Optional[bool] = None


@dataclass
class TrainConfig:
    """``accelerate launch train/run.py --config configs/train/scifact-minilm.yaml [key=value ...]``"""

    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    data: TrainDataConfig = field(default_factory=TrainDataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    batch_size: int = 4  # groups per process and step, before gradient accumulation
    gradient_accumulation_steps: int = 1  # batches whose gradients add up into one optimizer step
    epochs: float = 1.0  # passes over the training groups (fractions allowed); unused when max_steps is set
    max_steps: Optional[int] = None  # optimizer steps to train for, overriding epochs; null: train for epochs
    max_epochs: Optional[float] = None  # with max_steps: stop after this many passes if they come first (small data)
    eval_every: Optional[int] = None  # evaluate on dev every N optimizer steps; null: only at the end
    # no evaluation every eval_every steps before this share of the steps (the last step is always evaluated):
    # transformers' eval_delay, as a share like warmup_ratio. Saves the evaluations of checkpoints that come too
    # early to be kept
    eval_delay_ratio: float = 0.0
    # save a resumable checkpoint_<n>/ (model, optimizer, RNG states) every N optimizer steps; null: none mid-run
    save_every: Optional[int] = None
    keep_checkpoints: int = 2  # checkpoint_<n>/ folders kept; older ones are deleted
    early_stopping_patience: Optional[int] = None  # stop after this many evaluations without a better dev nDCG@10
    resume_from: Optional[str] = None  # "latest" (the newest checkpoint_<n>/, if any) or a checkpoint folder
    output_dir: str = "runs/train/scifact-minilm"  # final/ (the model to use), best/, checkpoint_<n>/, metrics.jsonl
    log_with: list[str] = field(default_factory=list)  # trackers besides metrics.jsonl, e.g. [wandb], [tensorboard]
    # no, bf16, fp16 or auto (YAML reads a bare `no` as false: also fine); auto: bf16 where it is fast (CUDA, CPUs
    # with AMX or AVX512-BF16), else no; null: what `accelerate launch`/its config says
    mixed_precision: Optional[str] = None
    seed: int = 42  # seeds the fresh head, the batch order and dropout
    license: str = "apache-2.0"  # the model card's license, a Hub license id (apache-2.0, mit, ...)


TRACKERS = ("wandb", "tensorboard")  # accelerate trackers that work offline
PRECISIONS = {"no": "no", "bf16": "bf16", "fp16": "fp16", "auto": "auto", "False": "no", "false": "no"}


def loss_problems(loss: LossConfig) -> list[str]:
    """``loss.name`` and ``loss.distill`` must name registered losses, and the distillation term a teacher one."""
    from rerankforge.train.losses import LOSSES  # imports torch: only when a config is checked

    label_losses = [name for name, each in LOSSES.items() if not each.teacher]
    teacher_losses = [name for name, each in LOSSES.items() if each.teacher]
    problems = []
    checks = (("loss.name", loss.name, list(LOSSES)), ("loss.distill", loss.distill, teacher_losses))
    for key, value, allowed in checks:
        if value is not None and value not in LOSSES:
            close = difflib.get_close_matches(value, allowed, n=1, cutoff=0.3)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            problems.append(f"{key}={value!r} is not a loss; expected one of {allowed}.{hint}")
    if loss.distill in LOSSES and not LOSSES[loss.distill].teacher:
        problems.append(f"loss.distill={loss.distill} is a label loss; the distillation term needs one that imitates "
                        f"a teacher: {teacher_losses}.")
    if loss.distill is not None and loss.name in teacher_losses:
        problems.append(f"loss.distill={loss.distill} adds a distillation term to a label loss, but loss.name="
                        f"{loss.name} is one already: set loss.name to a label loss ({', '.join(label_losses)}) "
                        "or loss.distill=null.")
    return problems


def position_problems(model: ModelConfig, max_positions: Optional[int]) -> list[str]:
    """``model.max_length`` when it asks for more tokens than the model can read (``usable_positions``)."""
    if max_positions and model.max_length > max_positions:
        return [f"model.max_length={model.max_length} is more than {model.name_or_path} has positions "
                f"({max_positions}); set model.max_length<={max_positions}."]
    return []


def check_train_config(cfg: TrainConfig) -> list[str]:
    """Every problem that does not depend on the data, all at once."""
    problems = []
    if cfg.data.group_size < 2 and cfg.loss.name != "pointwise_bce":
        problems.append(f"data.group_size must be >= 2 for loss.name={cfg.loss.name}, got {cfg.data.group_size}.")
    if cfg.data.group_size < 1:
        problems.append(f"data.group_size must be >= 1, got {cfg.data.group_size}.")
    if cfg.data.dev_max_passage_tokens is not None and cfg.data.dev_max_passage_tokens < 1:
        problems.append(f"data.dev_max_passage_tokens must be >= 1 (read long dev passages as windows, as eval's "
                        f"max_passage_tokens) or null (cut them), got {cfg.data.dev_max_passage_tokens}.")
    for key in ("batch_size", "gradient_accumulation_steps", "keep_checkpoints"):
        if getattr(cfg, key) < 1:
            problems.append(f"{key} must be >= 1, got {getattr(cfg, key)}.")
    if cfg.max_steps is None and cfg.epochs <= 0:
        problems.append(f"epochs must be > 0 (or set max_steps), got {cfg.epochs}.")
    if cfg.max_epochs is not None and cfg.max_epochs <= 0:
        problems.append(f"max_epochs must be > 0 or null (no cap on max_steps), got {cfg.max_epochs}.")
    if cfg.max_steps is not None and cfg.max_steps < 1:
        problems.append(f"max_steps must be >= 1 (or null to train for `epochs`), got {cfg.max_steps}.")
    if cfg.model.max_query_length >= cfg.model.max_length:
        problems.append(f"model.max_query_length ({cfg.model.max_query_length}) must be below model.max_length "
                        f"({cfg.model.max_length}) so that passages keep some tokens.")
    if cfg.lora.enabled and cfg.lora.export == "adapter" and cfg.model.gguf_file:
        # final/ would record only the base's name: its GGUF file is written nowhere, and a gguf_file given to
        # Reranker(final) is looked for in the adapter folder too
        problems.append(f"lora.export=adapter with model.gguf_file={cfg.model.gguf_file}: an adapter records only "
                        "its base's name, so eval, serve and Reranker(final) could not load the GGUF base. Set "
                        "lora.export=merged (a plain checkpoint that loads anywhere), or train from a base without "
                        "a GGUF file (model.gguf_file=null).")
    if cfg.model.dropout is not None and not 0 <= cfg.model.dropout < 1:
        problems.append(f"model.dropout must be in [0, 1) or null, got {cfg.model.dropout}.")
    problems += loss_problems(cfg.loss)
    if cfg.loss.distill_weight < 0 or cfg.loss.teacher_scale <= 0:
        problems.append(f"loss.distill_weight must be >= 0 and loss.teacher_scale > 0, got "
                        f"{cfg.loss.distill_weight} and {cfg.loss.teacher_scale}.")
    if not 0 <= cfg.optim.warmup_ratio < 1:
        problems.append(f"optim.warmup_ratio must be in [0, 1), got {cfg.optim.warmup_ratio}.")
    if not 0 <= cfg.eval_delay_ratio <= 1:
        problems.append(f"eval_delay_ratio must be in [0, 1] (a share of the steps), got {cfg.eval_delay_ratio}.")
    if cfg.mixed_precision is not None and cfg.mixed_precision not in PRECISIONS:
        problems.append(f"mixed_precision must be one of {list(PRECISIONS)[:4]} or null, got {cfg.mixed_precision!r}.")
    for tracker in cfg.log_with:
        if tracker not in TRACKERS:
            problems.append(f"log_with has {tracker!r}; expected any of {list(TRACKERS)}.")
        elif not is_installed(tracker):
            problems.append(missing_extra_message(tracker, f"log_with={tracker}"))
    return problems
