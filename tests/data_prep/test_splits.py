"""A test split held out of labelled queries: seeded, disjoint, sized by the fraction, written as qrels files."""

from __future__ import annotations

import pytest
from conftest import write_qrels

from rerankforge.core.problems import DataError
from rerankforge.data_prep.splits import hold_out_test, split_queries
from rerankforge.retrieval.config import FieldNames
from rerankforge.retrieval.loaders import load_qrels


def test_the_split_is_seeded_disjoint_and_independent_of_order():
    ids = [f"q{i}" for i in range(500)]
    train, test = split_queries(ids, 0.2, seed=42)
    assert len(test) == 100 and len(train) == 400 and not set(train) & set(test)
    assert split_queries(list(reversed(ids)), 0.2, seed=42) == (train, test)
    assert split_queries(ids, 0.2, seed=7)[1] != test


@pytest.mark.parametrize("n, size", [(4, 1), (5, 1), (9, 2), (10, 2)])
def test_small_label_sets_keep_at_least_half_for_training(n, size):
    train, test = split_queries([f"q{i}" for i in range(n)], 0.2, seed=0)
    assert len(test) == size and len(train) == n - size


def test_too_few_labelled_queries_is_an_error():
    with pytest.raises(ValueError, match="3 labelled queries cannot give a test split"):
        split_queries(["a", "b", "c"], 0.2, seed=0)


def test_hold_out_writes_both_qrels_and_the_record(tmp_path):
    rows = [(f"q{i}", f"d{i}", 1) for i in range(20)] + [("q0", "d99", 2), ("q20", "d5", 0)]
    source = write_qrels(tmp_path / "labels.tsv", rows)
    record = hold_out_test(source, FieldNames(), 0.25, 1, tmp_path / "split")
    problems = []
    train = load_qrels(tmp_path / "split" / "qrels" / "train.tsv", FieldNames(), problems)
    test = load_qrels(tmp_path / "split" / "qrels" / "test.tsv", FieldNames(), problems)
    assert not problems and not set(train) & set(test) and len(test) == record["test_queries"] == 5
    assert record["labelled_queries"] == 20 and "q20" in train  # no positive: stays with training (skipped there)
    assert {**train, **test} == load_qrels(source, FieldNames(), problems)  # nothing lost, graded labels kept
    assert (tmp_path / "split" / "split.json").exists()


def test_hold_out_of_too_few_queries_names_the_file(tmp_path):
    source = write_qrels(tmp_path / "labels.tsv", [("q0", "d0", 1), ("q1", "d1", 1)])
    with pytest.raises(DataError, match="labels.tsv: no test split, and 2 labelled queries cannot give"):
        hold_out_test(source, FieldNames(), 0.2, 1, tmp_path / "split")
