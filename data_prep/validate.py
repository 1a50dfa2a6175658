"""Checks on loaded data that run before any compute; every problem is collected, none stops the others."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from rerankforge.core.problems import Problem, first_few
from rerankforge.retrieval.config import DataConfig
from rerankforge.retrieval.loaders import Corpus, Qrels, Queries


@dataclass
class Positives:
    """Labelled queries ready for mining: ``positives[query_id]`` lists its positive doc ids, sorted."""

    positives: dict[str, list[str]]
    skipped_no_positive: list[str] = field(default_factory=list)


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


def check_ids(corpus: Corpus, queries: Queries, qrels: Qrels, source: str, problems: list[Problem]) -> None:
    """Qrels must point at known query and document ids."""
    unknown_queries = [q for q in qrels if q not in queries]
    unknown_docs = {d for docs in qrels.values() for d in docs if d not in corpus}
    if unknown_queries:
        problems.append(Problem(f"{len(unknown_queries)} query id(s) in the qrels are not in the queries file: "
                                f"{first_few(unknown_queries)}.", source))
    if unknown_docs:
        problems.append(Problem(f"{len(unknown_docs)} document id(s) in the qrels are not in the corpus: "
                                f"{first_few(unknown_docs)}.", source))


def check_disjoint(queries: Queries, train: Qrels, evaluation: Qrels, source: str, problems: list[Problem],
                   text_overlap: str = "warn") -> list[str]:
    """Refuse training query ids that are also evaluation query ids.

    Training queries whose (normalised) text equals an evaluation query's are a warning, an error or dropped,
    by ``text_overlap`` ("warn" | "error" | "drop"). Returns the ids to drop.
    """
    shared_ids = sorted(set(train) & set(evaluation))
    if shared_ids:
        problems.append(Problem(f"{len(shared_ids)} training query id(s) also appear in the evaluation split: "
                                f"{first_few(shared_ids)}. Remove them from one split.", source))
    eval_texts = {_normalise(queries[q]) for q in evaluation if q in queries and q not in train}
    same_text = [q for q in train if q in queries and _normalise(queries[q]) in eval_texts]
    if same_text:
        action = {"warn": "They are kept; set data.eval_text_overlap=drop to skip them",
                  "drop": "They are skipped", "error": "Remove them from one split, or set "
                  "data.eval_text_overlap=drop to skip them"}[text_overlap]
        problems.append(Problem(f"{len(same_text)} training query(ies) have the same text as an evaluation query: "
                                f"{first_few(same_text)}. {action}.", source,
                                level="error" if text_overlap == "error" else "warning"))
    return same_text if text_overlap == "drop" else []


def positives_from_qrels(qrels: Qrels, min_relevance: int, source: str, problems: list[Problem]) -> Positives:
    """Positives are judgements ``>= min_relevance``; queries with none are skipped with a warning."""
    positives, skipped = {}, []
    for query_id in sorted(qrels):
        docs = sorted(d for d, rel in qrels[query_id].items() if rel >= min_relevance)
        if docs:
            positives[query_id] = docs
        else:
            skipped.append(query_id)
    if skipped:
        problems.append(Problem(f"{len(skipped)} query(ies) have no positive (relevance >= {min_relevance}) and are "
                                f"skipped: {first_few(skipped)}.", source, level="warning"))
    return Positives(positives, skipped)


def check_negatives(negatives: dict[str, list[str]], corpus: Corpus, positives: dict[str, list[str]],
                    source: Optional[str], problems: list[Problem]) -> dict[str, list[str]]:
    """Given negatives must name known documents; a given negative that is also a positive of its query is dropped
    (with a warning). Returns the usable ones of the queries that have positives."""
    unknown = {d for docs in negatives.values() for d in docs if d not in corpus}
    if unknown:
        problems.append(Problem(f"{len(unknown)} document id(s) in the negatives are not in the corpus: "
                                f"{first_few(unknown)}.", source))
    kept, clashes = {}, 0
    for query_id, docs in negatives.items():
        if query_id not in positives:
            continue
        relevant = set(positives[query_id])
        usable = [d for d in docs if d not in relevant]
        clashes += len(docs) - len(usable)
        kept[query_id] = usable
    if clashes:
        problems.append(Problem(f"{clashes} given negative(s) are also positives of their query and are left out.",
                                source, level="warning"))
    return kept


def validate(corpus: Corpus, queries: Queries, qrels: Qrels, eval_qrels: Optional[Qrels], sources: dict[str, str],
             data: DataConfig, problems: list[Problem]) -> Positives:
    """Run every check; append to ``problems``; return the positives of the usable queries."""
    if not corpus:
        problems.append(Problem("the corpus is empty: no documents were loaded.", sources.get("corpus")))
    if not qrels:
        problems.append(Problem("the qrels are empty: no labelled query was loaded.", sources.get("qrels")))
    check_ids(corpus, queries, qrels, sources.get("qrels"), problems)
    dropped: list[str] = []
    if eval_qrels is not None:
        dropped = check_disjoint(queries, qrels, eval_qrels, sources.get("eval_qrels"), problems,
                                 data.eval_text_overlap)
    kept = {q: docs for q, docs in qrels.items() if q not in set(dropped)}
    return positives_from_qrels(kept, data.min_relevance, sources.get("qrels"), problems)
