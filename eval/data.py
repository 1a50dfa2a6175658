"""Load and check what an evaluation reads: corpus, queries, the qrels of one split, optional gold answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from rerankforge.core.problems import DataError, Problem
from rerankforge.core.readers import read_records
from rerankforge.data_prep.validate import check_ids
from rerankforge.eval.config import EvalDataConfig
from rerankforge.retrieval.loaders import beir_file, load_corpus_stored, load_qrels, load_queries, qrels_name


@dataclass
class EvalData:
    corpus: Mapping[str, dict[str, str]]  # a dict, or a memory-mapped retrieval.corpus_store.ArrowCorpus
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # only the evaluated queries (positives and graded labels)
    answers: dict[str, list[str]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)


def eval_paths(cfg: EvalDataConfig) -> dict[str, Optional[Path]]:
    """The corpus, queries, qrels and gold-answer files ``cfg`` points at (BEIR layout under ``path``)."""
    answers = None if answers_disabled(cfg) else beir_file(cfg.path, cfg.answers, "answers.jsonl")
    return {"corpus": beir_file(cfg.path, cfg.corpus, "corpus.jsonl"),
            "queries": beir_file(cfg.path, cfg.queries, "queries.jsonl"),
            "qrels": beir_file(cfg.path, cfg.qrels, qrels_name(cfg.split)),
            "answers": answers if cfg.answers or (answers and answers.exists()) else None}


NO_ANSWERS = "none"  # data.answers=none: evaluate without gold answers even when <path>/answers.jsonl exists


def answers_disabled(cfg: EvalDataConfig) -> bool:
    return (cfg.answers or "").strip().lower() == NO_ANSWERS or not cfg.answers_field


def load_answers(path: Path, problems: list[Problem], answers_field: str = "answers") -> dict[str, list[str]]:
    """``{query_id: [gold answer, ...]}`` from JSONL lines ``{"_id": ..., "<answers_field>": [...]}``; a string
    value is one answer. Records without the field make one problem for the whole file (naming the keys found
    and the config keys that fix it), not one per record."""
    answers: dict[str, list[str]] = {}
    lacking, keys_found, records = [], set(), 0
    for line, record in read_records(path, problems):
        records += 1
        query_id, golds = record.get("_id"), record.get(answers_field)
        if answers_field not in record:
            lacking.append(line)
            keys_found.update(record)
            continue
        if query_id is None:
            problems.append(Problem('no "_id" field (the query id).', str(path), line))
            continue
        if isinstance(golds, str):
            golds = [golds]
        if not isinstance(golds, list) or not all(isinstance(g, str) for g in golds):
            problems.append(Problem(f'"{answers_field}" must be a string or a list of strings, got '
                                    f"{type(golds).__name__}.", str(path), line))
            continue
        answers[str(query_id)] = [g for g in golds if g.strip()]
    if lacking:
        candidates = sorted(k for k in keys_found if k != "_id")
        fix = (f"data.answers_field to the field holding the gold answers (one of {', '.join(candidates)}; e.g. "
               f"data.answers_field={candidates[-1]})" if candidates else "data.answers_field to the field holding "
               "the gold answers")
        problems.append(Problem(
            f'{len(lacking):,} of {records:,} answer records have no "{answers_field}" field (first at line '
            f'{lacking[0]}); keys found: {sorted(keys_found)}. Expected one record per query like '
            f'{{"_id": "<query id>", "{answers_field}": ["<gold answer>", ...]}} (a string is one answer). Set '
            f"{fix}, or data.answers={NO_ANSWERS} to evaluate without "
            "answers.", str(path)))
    return answers


def load_eval_data(cfg: EvalDataConfig, need_qrels: bool = True, cache_dir: Optional[Path] = None) -> EvalData:
    """Load everything, check that ids resolve, and report every problem at once. With ``cache_dir``, the corpus
    may be kept in Arrow there (``data.storage``).

    Raises:
        DataError: a file is missing or malformed, or qrels name unknown query / document ids.
    """
    paths = eval_paths(cfg)
    wanted = {k: p for k, p in paths.items() if p and (need_qrels or k in ("corpus", "queries"))}
    problems = [Problem(f"{name} file not found: {p}", str(p)) for name, p in wanted.items() if not p.exists()]
    for name in ("corpus", "queries") + (("qrels",) if need_qrels else ()):
        if paths[name] is None:
            problems.append(Problem(f"no {name} file: set data.path to a BEIR folder or data.{name}."))
    if problems:
        raise DataError(problems)
    corpus = load_corpus_stored(paths["corpus"], cfg.fields, cfg.storage, problems, cache_dir)
    queries = load_queries(paths["queries"], cfg.fields, problems)
    qrels = load_qrels(paths["qrels"], cfg.fields, problems) if need_qrels else {}
    answers = load_answers(paths["answers"], problems, cfg.answers_field) if need_qrels and paths["answers"] else {}
    if need_qrels:
        check_ids(corpus, queries, qrels, str(paths["qrels"]), problems)
    errors = [p for p in problems if p.level == "error"]
    if errors:
        raise DataError(errors)
    evaluated = sorted(q for q, docs in qrels.items() if any(r > 0 for r in docs.values()))[: cfg.max_queries]
    return EvalData(corpus, queries, {q: qrels[q] for q in evaluated},
                    {q: answers[q] for q in evaluated if q in answers},
                    {k: str(p) for k, p in wanted.items()})
