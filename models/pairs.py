"""The one (query, passage) encoder: training, ``Reranker``, the OpenVINO backend and the server all use it.

Each pair is tokenized once, whole; then the query is cut to ``max_query_length`` tokens and the passage to what
is left of ``max_length``, by selecting token ids (the tokenizer's own special tokens and token types are kept,
nothing is decoded and re-encoded). No length of either text makes it fail. A passage longer than its budget is
either truncated (one window: FirstP) or, with ``max_passage_tokens``/``max_windows``, split into overlapping
windows that the caller scores separately and pools by max (MaxP, as Cohere's rerank does for long documents).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Sequence

import numpy as np

from rerankforge.core.text import windows


@dataclass(frozen=True)
class PairLimits:
    """How a (query, passage) pair is fitted into the model.

    Args:
        max_length: tokens per model input, special tokens included.
        max_query_length: the query keeps at most this many tokens (never more than half of ``max_length``
            less the special tokens, so the passage always keeps some).
        direction: "right" keeps a long passage's start (the usual truncation), "left" its end.
        max_passage_tokens: None (default): one window, the passage truncated to fit. A number: the passage is
            first cut to this many tokens, then split into windows of what ``max_length`` leaves after the query.
        max_windows: the most windows per passage (None: as many as ``max_passage_tokens`` needs).
        stride: tokens shared by consecutive windows.
        skip_first_window: leave out each passage's first window, which is the passage cut (direction "right")
            when ``max_passage_tokens`` is at least ``max_length``: for a caller that already has the cut scores.
            A passage that fits one window then has no input.
    """

    max_length: int = 512
    max_query_length: int = 64
    direction: Literal["right", "left"] = "right"
    max_passage_tokens: Optional[int] = None
    max_windows: Optional[int] = None
    stride: int = 32
    skip_first_window: bool = False

    def __post_init__(self) -> None:
        if self.direction not in ("right", "left"):
            raise ValueError(f"direction must be 'right' or 'left', got {self.direction!r}.")
        if self.skip_first_window and (self.direction != "right" or not self.windowed):
            raise ValueError("skip_first_window needs windows (max_passage_tokens or max_windows) read from the "
                             f"passage's start (direction 'right'); got {self}.")
        if self.max_length < 4 or self.max_query_length < 1 or self.stride < 0:
            raise ValueError(f"need max_length >= 4, max_query_length >= 1 and stride >= 0; got {self}.")

    @property
    def windowed(self) -> bool:
        return self.max_passage_tokens is not None or (self.max_windows or 1) > 1


def _spans(n: int, size: int, stride: int, limit: Optional[int], direction: str) -> list[tuple[int, int]]:
    """Windows of ``size`` over ``n`` passage tokens sharing ``stride``; with a ``limit``, the first ones
    (direction "right") or the last ones ("left")."""
    spans = windows(n, size, min(stride, size // 2)) or [(0, 0)]  # small budgets still advance
    if limit and len(spans) > limit:
        spans = spans[:limit] if direction == "right" else spans[-limit:]
    return spans


def encode_pairs(tokenizer, pairs: Sequence[tuple[str, str]], limits: PairLimits) -> tuple[list[dict], list[int]]:
    """Model inputs for ``pairs``: one dict of id lists per window, and the index of the pair each came from.

    Without windows (the default limits) there is exactly one input per pair, in order. Pad them with
    ``pad_inputs``. Needs a fast (Rust) tokenizer, which every transformers 5 tokenizer is.
    """
    if not pairs:
        return [], []
    enc = tokenizer([q for q, _ in pairs], [p for _, p in pairs], truncation=False, verbose=False)
    inputs, owners = [], []
    keys = [k for k in ("input_ids", "token_type_ids") if k in enc]
    for i in range(len(pairs)):
        seq = np.array([-1 if s is None else s for s in enc.sequence_ids(i)])
        columns = {k: np.asarray(enc[k][i]) for k in keys}
        specials = int((seq == -1).sum())
        if limits.max_length <= specials + 1:
            raise ValueError(f"max_length={limits.max_length} leaves no room for text after {specials} special tokens.")
        query_pos, passage_pos = np.flatnonzero(seq == 0), np.flatnonzero(seq == 1)
        query_keep = min(len(query_pos), limits.max_query_length, (limits.max_length - specials) // 2)
        budget = limits.max_length - specials - query_keep
        if limits.max_passage_tokens is not None and len(passage_pos) > limits.max_passage_tokens:
            cut = limits.max_passage_tokens
            passage_pos = passage_pos[:cut] if limits.direction == "right" else passage_pos[-cut:]
        if limits.windowed:
            spans = _spans(len(passage_pos), budget, limits.stride, limits.max_windows, limits.direction)
            spans = spans[1:] if limits.skip_first_window else spans
        else:
            n = len(passage_pos)
            spans = [(0, budget)] if limits.direction == "right" else [(max(n - budget, 0), n)]
        keep_base = seq == -1
        keep_base[query_pos[:query_keep]] = True
        for start, end in spans:
            keep = keep_base.copy()
            keep[passage_pos[start:end]] = True
            item = {k: columns[k][keep].tolist() for k in keys}
            item["attention_mask"] = [1] * len(item["input_ids"])
            inputs.append(item)
            owners.append(i)
    return inputs, owners


def pad_inputs(tokenizer, inputs: list[dict]) -> dict:
    """A padded batch of tensors from ``encode_pairs`` inputs."""
    keys = inputs[0].keys()
    return dict(tokenizer.pad({k: [item[k] for item in inputs] for k in keys}, return_tensors="pt"))
