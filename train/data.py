"""Training groups from a ``rerankforge mine`` output, a length-grouped batch sampler and a padding collator."""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import torch

from rerankforge.core.config import move_keys
from rerankforge.data_prep.config import MineConfig
from rerankforge.models.fusion import zscore
from rerankforge.models.pairs import PairLimits, encode_pairs, pad_inputs
from rerankforge.train.config import TrainConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Group:
    """One query with its positive first, then negatives; ``teacher`` scores in the same order (or None)."""

    query_id: str
    query: str
    passages: tuple[str, ...]
    teacher: Optional[tuple[float, ...]]


def load_groups(cfg: TrainConfig) -> tuple[list[Group], dict]:
    """Groups of ``data.group_size`` from the mining output; rows with too few negatives are dropped and counted.

    Raises:
        FileNotFoundError: the folder is not a complete mining output (no manifest.json).
    """
    # datasets takes ~1 s to import; only this path needs it
    from datasets import load_from_disk

    folder = Path(cfg.data.train)
    if not (folder / "manifest.json").exists():
        raise FileNotFoundError(f"data.train={folder} is not a finished `rerankforge mine` output (no manifest.json). "
                                "Run `rerankforge mine` first or point data.train at its output_dir.")
    rows = load_from_disk(str(folder / "dataset"))
    want = cfg.data.group_size - 1
    teacher_cols = {"rescore": ("positive_rescore", "negative_rescores"),
                    "judge": ("positive_judge", "negative_judges"),
                    "first_stage": ("positive_score", "negative_scores")}[cfg.loss.teacher]
    wants_teacher = cfg.loss.distill is not None or cfg.loss.name in ("margin_mse", "kl_distill")
    has_teacher = wants_teacher and all(c in rows.column_names for c in teacher_cols)
    first_stage = cfg.loss.teacher == "first_stage"
    lexical = first_stage and "positive_lexical" in rows.column_names
    groups, short = [], 0
    for row in rows:
        if len(row["negatives"]) < want:
            short += 1
            continue
        teacher = (row[teacher_cols[0]], *row[teacher_cols[1]][:want]) if has_teacher else None
        if teacher is not None and cfg.loss.teacher == "judge":  # log-odds on one scale per group, as first_stage
            teacher = first_stage_teacher(teacher)
        if teacher is not None and first_stage:
            teacher = first_stage_teacher(
                teacher, (row["positive_lexical"], *row["negative_lexical"][:want]) if lexical else None)
        groups.append(Group(row["query_id"], row["query"], (row["positive"], *row["negatives"][:want]), teacher))
    groups = groups[: cfg.data.max_rows]
    if short:
        logger.warning("%d of %d rows have fewer than %d negatives and are left out; lower data.group_size or "
                       "mine more negatives.", short, len(rows), want)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["config"] = move_keys(manifest.get("config", {}), MineConfig)  # a folder mined before a key moved
    return groups, {"rows": len(rows), "groups": len(groups), "rows_short": short, "has_teacher": has_teacher,
                    "mine_manifest": manifest}


def first_stage_teacher(scores: Sequence[float], lexical: Optional[Sequence[float]] = None) -> tuple[float, ...]:
    """The first stage's judgement of each passage of a group on one scale whatever the first stage: its scores
    z-scored over the group (cosines span ~0.3, BM25 tens); behind a hybrid stage, ``scores`` are the dense ones
    and the sum of their z-scores and BM25's (``lexical``) is taken, as ``models.fusion`` combines scores."""
    return tuple((zscore(scores) + (zscore(lexical) if lexical is not None else 0.0)).tolist())


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int, mega: int = 50) -> list[list[int]]:
    """Shuffle, then sort by length inside windows of ``mega`` batches, so batches pad little; shuffle batches.

    Deterministic for a seed; every index appears exactly once.
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = []
    window = batch_size * mega
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: -lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


class EpochBatches(torch.utils.data.Sampler):
    """A batch sampler whose length-grouped order changes with each epoch (``use_epoch``)."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int):
        self.lengths, self.batch_size, self.seed, self.epoch = lengths, batch_size, seed, 0

    def use_epoch(self, epoch: int) -> None:  # not `set_epoch`: accelerate would call that with its own count
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        return iter(length_grouped_batches(self.lengths, self.batch_size, self.seed + self.epoch))

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)


class GroupCollator:
    """Tokenizes groups into ``B*G`` (query, passage) pairs with dynamic padding, through the one pair encoder
    (``models/pairs.py``): a query is cut to ``max_query_length`` tokens, then the passage to the rest."""

    def __init__(self, tokenizer, max_length: int, max_query_length: int):
        self.tokenizer = tokenizer
        self.limits = PairLimits(max_length=max_length, max_query_length=max_query_length)

    def pairs(self, queries: list[str], passages: list[str]) -> dict[str, torch.Tensor]:
        inputs, _ = encode_pairs(self.tokenizer, list(zip(queries, passages)), self.limits)
        return pad_inputs(self.tokenizer, inputs)

    def __call__(self, groups: list[Group]) -> dict[str, torch.Tensor]:
        queries = [g.query for g in groups for _ in g.passages]
        batch = dict(self.pairs(queries, [p for g in groups for p in g.passages]))
        if groups[0].teacher is not None:
            batch["teacher"] = torch.tensor([g.teacher for g in groups], dtype=torch.float32)
        return batch
