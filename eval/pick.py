"""Which first stage to rerank when there are no labels: the one whose ranking agrees best with a judge's.

``first_stage.method=auto``: for a seeded sample of up to ``pick.max_queries`` unlabelled questions (a query log),
BM25 and dense each retrieve; the judge (``pick.judge``, a reranker of the run: in the quickstart the cold-start
reranker) scores the union of their top ``pick.pool``, and its best passage stands in for the relevant one. Each
first stage is scored by nDCG@10 against these pseudo-labels; the best is reranked, ties going to hybrid. Synthetic
questions cannot make this choice (they reuse their passage's words, which favours BM25); real questions judged
by the reranker can (bench/README.md: first stage without labels).
"""

from __future__ import annotations

import logging
import random
from typing import Callable, Sequence

from tqdm.auto import tqdm

from rerankforge.core.metrics import evaluate_run, untied
from rerankforge.core.problems import DataError, Problem

logger = logging.getLogger(__name__)
PREFERENCE = ("hybrid", "bm25", "dense")  # the order ties are broken in


def pseudo_qrels(pools: dict[str, list[str]], scores: dict[str, Sequence[float]]) -> dict[str, dict[str, int]]:
    """Each question's best-scored pooled doc as its one relevant doc (the first of equal scores)."""
    return {q: {docs[max(range(len(docs)), key=lambda i: (scores[q][i], -i))]: 1} for q, docs in pools.items() if docs}


def agreement(runs: dict[str, dict[str, dict[str, float]]], pseudo: dict[str, dict[str, int]]) -> dict[str, float]:
    """nDCG@10 of each first stage's run against the pseudo-labels."""
    return {method: evaluate_run(pseudo, run, ["ndcg@10"])["ndcg@10"] for method, run in runs.items()}


def choose(scores: dict[str, float]) -> str:
    """The method with the best agreement; ties go to the earliest of ``PREFERENCE``."""
    return max(PREFERENCE, key=lambda m: (scores.get(m, float("-inf")), -PREFERENCE.index(m)))


def judge_first_stages(questions: list[str], search_all: Callable, judge: Callable[[str, list[str]], Sequence[float]],
                       texts: dict[str, str], pool: int) -> dict[str, float]:
    """Each first stage's agreement with ``judge`` on ``questions``.

    ``search_all(questions)`` gives ``{method: [hits per question]}`` for bm25, dense and hybrid, at least 10
    deep; ``judge(question, passages)`` one score per passage (higher: more relevant)."""
    hits = search_all(questions)
    ids = [f"q{i}" for i in range(len(questions))]
    pools = {q: list(dict.fromkeys(d for m in ("bm25", "dense") for d, _ in hits[m][i][:pool]))
             for i, q in enumerate(ids)}
    scores = {q: judge(questions[i], [texts[d] for d in pools[q]]) for i, q in enumerate(ids)}
    runs = {method: {q: untied(h) for q, h in zip(ids, hits[method])} for method in PREFERENCE}
    return agreement(runs, pseudo_qrels(pools, scores))


def pick_first_stage(pipeline, questions: list[str], seed: int = 0) -> tuple[str, str]:
    """``(method, why)``: the first stage ``pipeline`` (built with a hybrid retriever) should rerank, by its
    ``retrieve.pick`` judge's choices on a seeded sample of ``questions``."""
    pick = pipeline.cfg.retrieve.pick
    if not questions:
        raise DataError([Problem("retrieve.pick.queries holds no question to pick the first stage with.",
                                 pick.queries)])
    sample = random.Random(seed).sample(questions, min(pick.max_queries, len(questions)))
    reranker = pipeline.rerankers[pick.judge]
    bar = tqdm(total=len(sample), desc="Judging first stages", unit="question")

    def judge(question: str, passages: list[str]) -> Sequence[float]:
        bar.update(1)
        return reranker.score(question, passages, raw=True)

    # passages, not documents (a chunked corpus): the judge reads what it was trained on; hybrid fuses the top
    # retrieve.top_k passages of both, as eval does on an unchunked corpus
    stage, depth = pipeline.retriever.stage, max(pick.pool, 10, pipeline.cfg.retrieve.top_k)
    scores = judge_first_stages(sample, lambda qs: stage.hits_all(qs, depth), judge, pipeline.texts, pick.pool)
    bar.close()
    method = choose(scores)
    figures = ", ".join(f"{m} {v:.4f}" for m, v in sorted(scores.items(), key=lambda kv: -kv[1]))
    why = (f"its ranking agreed best with the {pick.judge} reranker's choices among the BM25 and dense candidates of "
           f"{len(sample)} unlabelled questions ({pick.queries}; nDCG@10 against them: {figures})")
    logger.info("First stage picked without labels: %s (%s).", method, figures)
    return method, why
