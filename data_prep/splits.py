"""A test split held out of labelled queries, for data that comes without one.

``split_queries`` is the pure part (a seeded sample of the query ids that have a positive); ``hold_out_test``
writes the two qrels files, so the stages read the split from files like any other.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Sequence

from rerankforge.core.io import hash_path, write_json, write_qrels_atomic
from rerankforge.core.problems import DataError, Problem
from rerankforge.retrieval.config import FieldNames
from rerankforge.retrieval.loaders import load_qrels

MIN_LABELLED = 4  # fewer labelled queries cannot give both a test split and something to train on


def split_queries(query_ids: Sequence[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train ids, test ids), both sorted: a seeded ``fraction`` of ``query_ids`` (at least 1, at most half)
    is the test split. The same ids, fraction and seed always give the same split, whatever their order.

    Raises:
        ValueError: fewer than ``MIN_LABELLED`` ids, or a fraction outside (0, 1)."""
    if not 0 < fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {fraction}.")
    ids = sorted(set(query_ids))
    if len(ids) < MIN_LABELLED:
        raise ValueError(f"{len(ids)} labelled queries cannot give a test split and a training set: "
                         f"at least {MIN_LABELLED} are needed.")
    size = min(max(1, round(fraction * len(ids))), len(ids) // 2)
    test = set(random.Random(f"test:{seed}").sample(ids, size))
    return [q for q in ids if q not in test], sorted(test)


def hold_out_test(qrels_file: Path, fields: FieldNames, fraction: float, seed: int, out: Path,
                  names: tuple[str, str] = ("train", "test")) -> dict:
    """Split the labelled queries of ``qrels_file`` into ``out/qrels/<train>.tsv`` and ``<test>.tsv`` (queries
    without a positive stay with training, which skips them) and ``out/split.json``; returns the split's record.

    Raises:
        DataError: the qrels cannot be read, or hold too few labelled queries."""
    if not 0 < fraction < 1:  # the quickstart's own check says so too; the same words read as one problem
        raise DataError([Problem(f"test_fraction must be in (0, 1), got {fraction}.")])
    problems: list[Problem] = []
    qrels = load_qrels(qrels_file, fields, problems)
    if problems:
        raise DataError(problems)
    labelled = [q for q, docs in qrels.items() if any(r > 0 for r in docs.values())]
    try:
        train, test = split_queries(labelled, fraction, seed)
    except ValueError as exc:
        raise DataError([Problem(f"no test split, and {exc} Add labelled queries, or give a test split "
                                 f"(qrels/{names[1]}.tsv).", str(qrels_file))]) from None
    unlabelled = sorted(set(qrels) - set(labelled))
    write_qrels_atomic(out / "qrels" / f"{names[0]}.tsv", {q: qrels[q] for q in train + unlabelled})
    write_qrels_atomic(out / "qrels" / f"{names[1]}.tsv", {q: qrels[q] for q in test})
    record = {"source": str(qrels_file), "sha256": hash_path(qrels_file), "fraction": fraction, "seed": seed,
              "labelled_queries": len(labelled), "train_queries": len(train), "test_queries": len(test)}
    write_json(out / "split.json", record)
    return record
