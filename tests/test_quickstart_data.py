"""The whole quickstart (tiny models, CPU) on a user's own data: generated corpora of 50, 300 and 3,000 documents,
each in another shape (sentence-transformers rows, a BEIR folder without a test split, a full BEIR folder, single
files, a local dataset folder standing in for a Hub id). The settings that depend on the corpus size (the
candidate window, negatives, group size, dev split, rerank depth) keep their defaults; each run must end with a
report and a trained checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_labelled_corpus, write_beir, write_jsonl

from rerankforge.cli import main

FAST = ["train.max_steps=3", "train.batch_size=2", "train.model.max_length=96", "train.save_every=null",
        "eval.rerankers.finetuned.max_length=96", "eval.data.max_queries=8", "eval.generate.top_n_sweep=[3]"]


@pytest.fixture
def run(tmp_path, tiny_encoder, tiny_cross_encoder, capsys):
    """``run(*args) -> (printed, output folder)``: the quickstart with the tiny models; asserts it ended well."""

    def quickstart(*args: str) -> tuple[str, Path]:
        out = tmp_path / "qs"
        code = main(["quickstart", *args, f"output_dir={out}", f"mine.first_stage.encoder.name_or_path={tiny_encoder}",
                     f"train.model.name_or_path={tiny_cross_encoder}", f"mine.cache_dir={tmp_path / 'cache'}", *FAST])
        printed = capsys.readouterr()
        assert code == 0, printed.err
        for path in ("eval/report.md", "eval/report.json", "train/final/model.safetensors", "mine/manifest.json",
                     "manifest.json"):
            assert (out / path).exists(), path
        return printed.out, out

    return quickstart


def mined_counts(out: Path) -> dict:
    return json.loads((out / "mine" / "manifest.json").read_text())["counts"]


def test_50_documents_as_sentence_transformers_rows(run, tmp_path):
    corpus, queries, qrels = make_labelled_corpus(50, 40)
    text = {d["_id"]: d["text"] for d in corpus}
    rows = [{"anchor": q["text"], "positive": text[d], "negative": text[f"d{(int(d[1:]) + 7) % 50}"]}
            for q, (_, d, _) in zip(queries, qrels)]
    printed, out = run(f"data={write_jsonl(tmp_path / 'pairs.jsonl', rows)}")
    counts = mined_counts(out)
    assert counts["given_negatives"] > 0 and counts["rows"] > 0
    mined = json.loads((out / "mine" / "manifest.json").read_text())["config"]
    assert mined["mining"]["range_max"] < 50  # the window left room for random negatives
    assert "No test split in" in printed and "test split: 8 of 40 labelled queries" in printed


def test_300_documents_in_a_beir_folder_without_a_test_split(run, tmp_path):
    corpus, queries, qrels = make_labelled_corpus(300, 120)
    printed, out = run(f"data={write_beir(tmp_path / 'beir', corpus, queries, {'train': qrels})}")
    manifest = json.loads((out / "manifest.json").read_text())
    held = manifest["data"]["held_out_test_split"]
    assert (held["labelled_queries"], held["test_queries"], held["train_queries"]) == (120, 24, 96)
    train = {line.split("\t")[0] for line in (out / "split" / "qrels" / "train.tsv").read_text().splitlines()[1:]}
    test = {line.split("\t")[0] for line in (out / "split" / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    mined = json.loads((out / "mine" / "manifest.json").read_text())
    assert not train & test and not set(mined["dev_query_ids"]) & test  # never evaluated on a training query
    evaluated = [json.loads(line)["query_id"] for line in (out / "eval" / "per_query.jsonl").read_text().splitlines()]
    assert len(evaluated) == 8 and set(evaluated) <= test
    assert manifest["lengths"]["documents"]["sampled"] == 300


def test_3000_documents_in_a_full_beir_folder(run, tmp_path):
    corpus, queries, qrels = make_labelled_corpus(3000, 90)
    folder = write_beir(tmp_path / "beir", corpus, queries, {"train": qrels[:70], "test": qrels[70:]})
    printed, out = run(f"data={folder}", "mine.max_queries=40")
    assert "No test split" not in printed and mined_counts(out)["queries_mined"] > 0
    assert json.loads((out / "mine" / "manifest.json").read_text())["config"]["mining"]["range_max"] == 1500


def test_single_files_and_a_local_dataset_folder(run, tmp_path):
    corpus, queries, qrels = make_labelled_corpus(120, 40)
    folder = write_beir(tmp_path / "files", corpus, queries, {"labels": qrels})
    printed, out = run(f"corpus={folder / 'corpus.jsonl'}", f"queries={folder / 'queries.jsonl'}",
                       f"qrels={folder / 'qrels' / 'labels.tsv'}")
    assert json.loads((out / "manifest.json").read_text())["data"]["kind"] == "files"
    text = {d["_id"]: d["text"] for d in corpus}
    hub = tmp_path / "hub-style"  # what datasets.load_dataset reads from a Hub id, here from a local folder
    rows = [{"query": q["text"], "positive": text[d]} for q, (_, d, _) in zip(queries, qrels)]
    write_jsonl(hub / "train.jsonl", rows[:30])
    write_jsonl(hub / "test.jsonl", rows[30:])
    printed, out = run(f"data={hub}")
    assert "No test split" not in printed
    assert json.loads((out / "manifest.json").read_text())["data"]["kind"] == "sentence-transformers"


def test_test_labels_only_train_on_generated_queries(run, tmp_path, monkeypatch):
    """A corpus whose labels are for evaluation only: `labels: auto` is cold start, mining behind hybrid."""
    from test_quickstart import WordStub

    import rerankforge.models.llm as llm

    monkeypatch.setattr(llm, "load_llm", lambda cfg, device=None: WordStub())
    corpus, queries, qrels = make_labelled_corpus(200, 20)
    printed, out = run(f"data={write_beir(tmp_path / 'beir', corpus, queries, {'test': qrels})}",
                       "synth.passages=60", "synth.min_passage_words=5", "synth.filters.round_trip_depth=0")
    assert "has test labels only" in printed and "mining with hybrid" in printed
    mined = json.loads((out / "mine" / "manifest.json").read_text())
    assert mined["config"]["first_stage"]["method"] == "hybrid"
    assert mined["inputs"]["qrels"]["path"] == str(out / "synth" / "qrels" / "train.tsv")
