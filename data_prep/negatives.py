"""Pure hard-negative selection: ranked candidates + scores in, chosen negatives + a tally out.

No encoding, no FAISS: candidates come from any first stage (dense, BM25, hybrid), and scores may come
from a cross-encoder instead. Option names and meanings follow sentence-transformers' ``mine_hard_negatives``.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from dataclasses import dataclass
from typing import Collection, Literal, Optional, Sequence

# Every candidate gets exactly one fate, so the tally always sums to the number of candidates.
FATES = ("positive", "given", "outside_range", "absolute_margin", "relative_margin", "max_score", "min_score",
         "not_sampled", "judged_relevant", "selected")


@dataclass(frozen=True)
class SelectionOptions:
    """Filters applied in this order: positives, rank window, margins, max/min score, then sampling.

    - ``range_min``/``range_max``: keep candidates ranked in ``[range_min, range_max)`` among non-positives.
    - ``absolute_margin``: drop a candidate if ``score + absolute_margin > positive_score``.
    - ``relative_margin``: drop it if ``score > positive_score - |positive_score| * relative_margin``
      (NV-Retriever's TopK-PercPos with 0.05).
    - ``max_score``/``min_score``: drop scores above / below.
    - ``sampling_strategy``: ``top`` takes the best-ranked survivors, ``random`` a uniform sample of them.
    """

    num_negatives: int = 3
    range_min: int = 0
    range_max: Optional[int] = None
    absolute_margin: Optional[float] = None
    relative_margin: Optional[float] = None
    max_score: Optional[float] = None
    min_score: Optional[float] = None
    sampling_strategy: Literal["top", "random"] = "top"


@dataclass(frozen=True)
class Selection:
    """``indices`` into the candidate list, in rank order; ``fates`` counts what happened to each candidate."""

    indices: list[int]
    fates: Counter


def _score_filter(score: float, positive_score: Optional[float], opt: SelectionOptions) -> Optional[str]:
    """The name of the first filter that rejects ``score``, or None when it passes."""
    if positive_score is not None:
        if opt.absolute_margin is not None and score + opt.absolute_margin > positive_score:
            return "absolute_margin"
        if opt.relative_margin is not None and score > positive_score - abs(positive_score) * opt.relative_margin:
            return "relative_margin"
    if opt.max_score is not None and score > opt.max_score:
        return "max_score"
    if opt.min_score is not None and score < opt.min_score:
        return "min_score"
    return None


def select_negatives(candidate_ids: Sequence[str], scores: Sequence[float], positive_ids: Collection[str],
                     positive_score: Optional[float], options: SelectionOptions,
                     rng: Optional[random.Random] = None, given_ids: Collection[str] = ()) -> Selection:
    """Choose up to ``options.num_negatives`` hard negatives from ranked candidates.

    Args:
        candidate_ids: doc ids, best first. ``scores[i]`` is the score of ``candidate_ids[i]``.
        positive_ids: the query's positives; never returned.
        given_ids: negatives the row already has (from the user's data); never returned again, and, like
            positives, not counted in the rank window.
        positive_score: the score of the query's hardest (lowest-scored) positive, for the margin filters.
        rng: needed for ``sampling_strategy="random"``.

    Raises:
        ValueError: lengths differ, a margin is set without ``positive_score``, or random sampling has no rng.
    """
    if len(candidate_ids) != len(scores):
        raise ValueError(f"candidate_ids has {len(candidate_ids)} items but scores has {len(scores)}.")
    margins = options.absolute_margin is not None or options.relative_margin is not None
    if margins and positive_score is None:
        raise ValueError("absolute_margin/relative_margin need the positive's score; positive_score is None.")
    if options.sampling_strategy == "random" and rng is None:
        raise ValueError("sampling_strategy='random' needs an rng (random.Random(seed)).")
    range_max = options.range_max if options.range_max is not None else len(candidate_ids)
    fates: Counter = Counter({fate: 0 for fate in FATES})
    survivors, rank = [], 0
    for index, (doc_id, score) in enumerate(zip(candidate_ids, scores)):
        if doc_id in positive_ids:
            fates["positive"] += 1
            continue
        if doc_id in given_ids:
            fates["given"] += 1
            continue
        rank += 1
        if not options.range_min < rank <= range_max:
            fates["outside_range"] += 1
            continue
        rejected_by = _score_filter(float(score), positive_score, options)
        if rejected_by:
            fates[rejected_by] += 1
        else:
            survivors.append(index)
    if options.sampling_strategy == "random" and len(survivors) > options.num_negatives:
        chosen = sorted(rng.sample(survivors, options.num_negatives))
    else:
        chosen = survivors[:options.num_negatives]
    fates["selected"] += len(chosen)
    fates["not_sampled"] += len(survivors) - len(chosen)
    return Selection(chosen, fates)


def fit_window(options: SelectionOptions, corpus_size: int) -> SelectionOptions:
    """``options`` with ``range_max`` cut to half of ``corpus_size`` (never below ``range_min + num_negatives``).

    Random negatives come from outside the candidate window, and so do the ones that fill a row short of hard
    negatives: a window as large as a small corpus would leave none to draw."""
    half = max(corpus_size // 2, options.range_min + options.num_negatives)
    if options.range_max is None or options.range_max > half:
        return dataclasses.replace(options, range_max=half)
    return options


def sample_easy_negatives(corpus_ids: Sequence[str], exclude: Collection[str], count: int,
                          rng: random.Random) -> list[str]:
    """``count`` distinct random doc ids not in ``exclude`` (fewer if the corpus runs out), in draw order."""
    if count <= 0:
        return []
    excluded = set(exclude)
    if len(corpus_ids) < 4 * (count + len(excluded)):  # small corpus: sample from the explicit remainder
        remainder = [d for d in corpus_ids if d not in excluded]
        return rng.sample(remainder, min(count, len(remainder)))
    chosen: list[str] = []
    taken = excluded
    while len(chosen) < count:  # large corpus: rejection sampling, at least half of all draws are valid
        doc_id = corpus_ids[rng.randrange(len(corpus_ids))]
        if doc_id not in taken:
            taken.add(doc_id)
            chosen.append(doc_id)
    return chosen
