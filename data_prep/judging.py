"""The LLM judge in mining (``mining.judge``): it scores each row's positive and negatives, which the training set
keeps as a teacher (``loss.teacher=judge``), and drops hard negatives it rates relevant: likely false negatives,
which would teach the reranker to push a right answer down (RocketQA's denoising, with an LLM as the judge).

The selection itself stays pure (``drop_judged``); the judge is ``models/judge.py``'s, journalled in the cache
folder so a killed mining run asks nothing twice.
"""

from __future__ import annotations

from collections import Counter
from typing import Optional, Sequence

from tqdm.auto import tqdm

from rerankforge.core.io import resolve_cache_dir
from rerankforge.models.calibration import sigmoid
from rerankforge.models.judge import Judge
from rerankforge.retrieval.corpus_store import take_texts


def load_mining_judge(cfg) -> Optional[Judge]:
    """The judge ``mining.judge.llm`` configures, journalled under the cache folder; None when it is off."""
    return Judge(cfg.mining.judge.llm, resolve_cache_dir(cfg.cache_dir)) if cfg.mining.judge.on else None


def drop_judged(rows: Sequence[int], logits: dict[int, float], max_probability: Optional[float],
                keep: int) -> tuple[list[int], int]:
    """The first ``keep`` of ``rows`` whose judged P(relevant) (sigmoid of ``logits[row]``) is below
    ``max_probability`` (None: no row is dropped), and how many of ``rows`` were dropped for it."""
    dropped = [r for r in rows if max_probability is not None and sigmoid(logits[r]) >= max_probability]
    return [r for r in rows if r not in set(dropped)][:keep], len(dropped)


def judge_rows(judge: Judge, queries: Sequence[str], rows: Sequence[Sequence[int]], doc_texts: Sequence[str],
               known: Optional[list[dict[int, float]]] = None,
               desc: str = "Judging candidates") -> list[dict[int, float]]:
    """The judge's log-odds of every ``(queries[i], row)`` for ``row in rows[i]``, added to ``known[i]`` (rows
    already there are not asked again)."""
    known = known if known is not None else [{} for _ in rows]
    for i in tqdm(range(len(rows)), desc=desc, unit="query"):
        todo = [r for r in dict.fromkeys(rows[i]) if r not in known[i]]
        if todo:
            known[i].update(zip(todo, judge.score(queries[i], take_texts(doc_texts, todo), raw=True)))
    return known


def filter_hard(judge: Judge, cfg, queries: Sequence[str], positives: Sequence[list[int]],
                hard: list[tuple[list[int], list[float]]], slots: Sequence[int], doc_texts: Sequence[str],
                tally: Counter) -> tuple[list[tuple[list[int], list[float]]], list[dict[int, float]]]:
    """Each query's hard negatives (``hard``: rows and first-stage scores, ``mining.judge.spare`` more than its
    ``slots``) less those the judge rates relevant, cut to ``slots``; and the judge's log-odds so far. ``tally``
    moves the dropped candidates from ``selected`` to ``judged_relevant``, the unused spares to ``not_sampled``."""
    j = cfg.mining.judge
    logits = judge_rows(judge, queries, [p + rows for p, (rows, _) in zip(positives, hard)], doc_texts)
    out = []
    for i, (rows, scores) in enumerate(hard):
        kept, dropped = drop_judged(rows, logits[i], j.max_probability, slots[i])
        tally["selected"] -= len(rows) - len(kept)
        tally["judged_relevant"] += dropped
        tally["not_sampled"] += len(rows) - len(kept) - dropped
        score_of = dict(zip(rows, scores))
        out.append((kept, [score_of[r] for r in kept]))
    return out, logits
