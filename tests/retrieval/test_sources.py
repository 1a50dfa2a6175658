"""A user's data in the shapes people have it, turned into the BEIR files the stages read."""

from __future__ import annotations

import json

import pytest
from conftest import make_beir, write_jsonl

from rerankforge.core.problems import DataError
from rerankforge.retrieval.config import FieldNames
from rerankforge.retrieval.download import DatasetNotFoundError
from rerankforge.retrieval.loaders import load_corpus, load_negatives, load_qrels, load_queries
from rerankforge.retrieval.sources import files_source, resolve_source

ROWS = [{"anchor": "what do cats eat", "positive": "cats eat fish", "negative": "dogs run"},
        {"anchor": "what do cats eat", "positive": "cats like fish and mice", "negative": "birds sing"},
        {"anchor": "where do dogs run", "positive": "dogs run in the park", "negative": "cats eat fish"}]


def read_beir(source):
    problems = []
    corpus = load_corpus(source.corpus, FieldNames(), problems)
    queries = load_queries(source.queries, FieldNames(), problems)
    qrels = {split: load_qrels(path, FieldNames(), problems) for split, path in source.qrels.items()}
    negatives = load_negatives(source.negatives, problems) if source.negatives else {}
    assert not problems
    return corpus, queries, qrels, negatives


def texts_of(corpus, qrels, queries, query):
    qid = next(q for q, text in queries.items() if text == query)
    return qid, sorted(corpus[d]["text"] for d in qrels[qid])


def test_a_beir_folder_is_read_in_place_with_its_splits(tmp_path):
    folder = make_beir(tmp_path / "beir")
    source = resolve_source(str(folder), tmp_path / "out")
    assert source.kind == "beir" and source.corpus == folder / "corpus.jsonl" and set(source.qrels) == {"train", "test"}
    assert not (tmp_path / "out").exists()


def test_sentence_transformers_rows_become_a_corpus_queries_qrels_and_given_negatives(tmp_path):
    source = resolve_source(str(write_jsonl(tmp_path / "pairs.jsonl", ROWS)), tmp_path / "out")
    corpus, queries, qrels, negatives = read_beir(source)
    assert source.kind == "sentence-transformers" and set(qrels) == {"train"}
    assert len(corpus) == 5 and len(queries) == 2  # every distinct text once: "cats eat fish" is both
    qid, positives = texts_of(corpus, qrels["train"], queries, "what do cats eat")
    assert positives == ["cats eat fish", "cats like fish and mice"]
    assert sorted(corpus[d]["text"] for d in negatives[qid]) == ["birds sing", "dogs run"]
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["counts"]["given_negatives"] == 3


def test_parquet_pairs_and_a_saved_dataset_with_a_test_split(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Dataset, DatasetDict

    pairs = [{"query": r["anchor"], "answer": r["positive"]} for r in ROWS]
    pq.write_table(pa.Table.from_pylist(pairs), tmp_path / "pairs.parquet")
    corpus, queries, qrels, negatives = read_beir(resolve_source(str(tmp_path / "pairs.parquet"), tmp_path / "a"))
    assert len(queries) == 2 and not negatives and sum(map(len, qrels["train"].values())) == 3
    saved = DatasetDict({"train": Dataset.from_list(ROWS[:2]),
                         "test": Dataset.from_list([ROWS[2], {**ROWS[0], "positive": "cats eat everything"}])})
    saved.save_to_disk(str(tmp_path / "saved"))
    corpus, queries, qrels, _ = read_beir(resolve_source(str(tmp_path / "saved"), tmp_path / "b"))
    assert set(qrels) == {"train", "test"} and len(qrels["test"]) == 1  # a train query is never a test query
    assert texts_of(corpus, qrels["test"], queries, "where do dogs run")[1] == ["dogs run in the park"]


def test_a_local_dataset_folder_stands_in_for_a_hub_id(tmp_path):
    st = tmp_path / "st"
    write_jsonl(st / "train.jsonl", ROWS)
    write_jsonl(st / "test.jsonl", [{"anchor": "who sat", "positive": "the cat sat", "negative": "a dog ran"}])
    _, queries, qrels, _ = read_beir(resolve_source(str(st), tmp_path / "a"))
    assert set(qrels) == {"train", "test"} and "who sat" in queries.values()

    hub = tmp_path / "hub"  # BEIR on the Hub: corpus and queries configs, qrels as the default config
    (hub / "README.md").parent.mkdir()
    (hub / "README.md").write_text("---\nconfigs:\n" + "".join(
        f"- config_name: {name}\n  data_files:\n" + "".join(f"  - split: {s}\n    path: {name}/{s}.jsonl\n"
                                                          for s in splits)
        for name, splits in (("corpus", ["corpus"]), ("queries", ["queries"]), ("default", ["train", "test"]))) +
        "---\n")
    write_jsonl(hub / "corpus" / "corpus.jsonl", [{"_id": "d1", "title": "T", "text": "cats"},
                                                  {"_id": "d2", "title": "", "text": "dogs"}])
    write_jsonl(hub / "queries" / "queries.jsonl", [{"_id": "q1", "text": "cat?"}, {"_id": "q2", "text": "dog?"}])
    write_jsonl(hub / "default" / "train.jsonl", [{"query-id": "q1", "corpus-id": "d1", "score": 1}])
    write_jsonl(hub / "default" / "test.jsonl", [{"query-id": "q2", "corpus-id": "d2", "score": 2}])
    source = resolve_source(str(hub), tmp_path / "b")
    corpus, queries, qrels, _ = read_beir(source)
    assert source.kind == "hub-beir" and corpus["d1"] == {"title": "T", "text": "cats"}
    assert qrels == {"train": {"q1": {"d1": 1}}, "test": {"q2": {"d2": 2}}}


def test_scored_pairs_and_unknown_names_are_refused_with_what_to_give(tmp_path, monkeypatch):
    scored = write_jsonl(tmp_path / "scored.jsonl", [{"query": "a", "passage": "b", "label": 1}])
    with pytest.raises(DataError, match="a 'label' column makes scored pairs"):
        resolve_source(str(scored), tmp_path / "out")
    with pytest.raises(DatasetNotFoundError, match="no such file or folder. Give a BEIR folder"):
        resolve_source(str(tmp_path / "nothing" / "here"), tmp_path / "out")
    (make_beir(tmp_path / "half") / "queries.jsonl").unlink()
    with pytest.raises(DatasetNotFoundError, match="needs corpus.jsonl and queries.jsonl, and queries.jsonl is miss"):
        resolve_source(str(tmp_path / "half"), tmp_path / "out")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DatasetNotFoundError, match="datasets.load_dataset could not load it"):
        resolve_source("someone/no-such-dataset", tmp_path / "out")


def test_single_files_must_come_together(tmp_path):
    folder = make_beir(tmp_path / "beir")
    with pytest.raises(DataError) as err:
        files_source(str(folder / "corpus.jsonl"), None, str(tmp_path / "nope.tsv"), "labels")
    assert "--queries is missing" in str(err.value) and "nope.tsv" in str(err.value)
    source = files_source(str(folder / "corpus.jsonl"), str(folder / "queries.jsonl"),
                          str(folder / "qrels" / "train.tsv"), "labels")
    assert source.qrels == {"labels": folder / "qrels" / "train.tsv"} and source.folder is None


def test_a_beir_file_or_a_text_folder_given_as_rows_says_what_to_give_instead(tmp_path):
    folder = make_beir(tmp_path / "beir")
    with pytest.raises(DataError, match="are a BEIR corpus, queries or qrels file, not \\(query, positive"):
        resolve_source(str(folder / "corpus.jsonl"), tmp_path / "out")
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("some text", encoding="utf-8")
    with pytest.raises(DatasetNotFoundError, match="a folder of .txt/.md files holds no queries or labels"):
        resolve_source(str(tmp_path / "texts"), tmp_path / "out")
