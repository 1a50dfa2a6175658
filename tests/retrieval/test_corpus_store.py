"""The Arrow-backed corpus: the same corpus as the dict loader, problems with file and line, built once, and
mining and eval over it give what the dict corpus gives."""

import json
from pathlib import Path

import pytest
from conftest import write_jsonl
from datasets import load_from_disk

import rerankforge.retrieval.corpus_store as store
from rerankforge.core.text import doc_text
from rerankforge.data_prep.config import MineConfig, MiningConfig
from rerankforge.data_prep.mine import mine
from rerankforge.retrieval.config import DataConfig, EncoderConfig, FieldNames, FirstStageConfig
from rerankforge.retrieval.corpus_store import (
    ArrowCorpus,
    corpus_ids,
    corpus_texts,
    load_arrow_corpus,
    row_finder,
    take_texts,
    texts_by_id,
    use_arrow,
)
from rerankforge.retrieval.loaders import load_corpus


def make_cfg(beir_dir: Path, tmp_path: Path, encoder: str, storage: str, out: str) -> MineConfig:
    return MineConfig(data=DataConfig(path=str(beir_dir), dev_fraction=0.5, dev_min_queries=1, storage=storage),
                      first_stage=FirstStageConfig("dense", EncoderConfig(name_or_path=encoder, batch_size=8)),
                      mining=MiningConfig(range_max=20, num_negatives=4, random_negatives=2),
                      output_dir=str(tmp_path / out), cache_dir=str(tmp_path / "cache"))


def test_arrow_corpus_matches_the_dict_corpus(beir_dir, tmp_path):
    path = beir_dir / "corpus.jsonl"
    problems = []
    memory = load_corpus(path, FieldNames(), problems)
    arrow = load_arrow_corpus(path, FieldNames(), tmp_path / "cache", problems)
    assert problems == [] and isinstance(arrow, ArrowCorpus)
    assert list(corpus_ids(arrow)) == corpus_ids(memory) == sorted(memory)  # rows in sorted id order
    assert dict(arrow.items()) == memory and len(arrow) == len(memory)
    assert [d for d, _ in arrow.items()] == sorted(memory) and arrow["d3"] == memory["d3"]
    ids = corpus_ids(arrow)
    assert list(corpus_texts(arrow, ids)) == corpus_texts(memory, sorted(memory))
    assert take_texts(arrow.texts, [5, 0, 5]) == [doc_text(memory[ids[i]]) for i in (5, 0, 5)]
    assert arrow.texts[2:4] == [doc_text(memory[d]) for d in ids[2:4]]
    find = row_finder(ids)
    assert [find(d) for d in ("d0", "d17", "d9")] == [sorted(memory).index(d) for d in ("d0", "d17", "d9")]
    assert "d3" in arrow and "nope" not in arrow and 3 not in arrow
    with pytest.raises(KeyError):
        find("nope")
    with pytest.raises(KeyError):
        arrow["nope"]
    assert dict(texts_by_id(arrow, ids)) == texts_by_id(memory, sorted(memory))


def test_problems_name_file_and_line_and_come_back_from_the_cache(tmp_path, monkeypatch):
    path = write_jsonl(tmp_path / "corpus.jsonl", [{"_id": "a", "text": "x"}, {"_id": "b"},
                                                    {"_id": "a", "text": "y"}, {"text": "no id"}])
    expected = []
    load_corpus(path, FieldNames(), expected)
    first = []
    corpus = load_arrow_corpus(path, FieldNames(), tmp_path / "cache", first)
    assert [str(p) for p in first] == [str(p) for p in expected]  # same messages, files and lines
    assert any(p.line == 2 and "missing field 'text'" in p.message for p in first)
    assert any("1 duplicate document id(s): 'a'" in p.message for p in first)
    assert len(corpus) == 2

    def rebuilt(*args):
        raise AssertionError("the stored table should have been reused")

    monkeypatch.setattr(store, "_build", rebuilt)
    again = []
    load_arrow_corpus(path, FieldNames(), tmp_path / "cache", again)
    assert [str(p) for p in again] == [str(p) for p in first]


def test_a_changed_file_or_field_names_builds_a_new_table(tmp_path):
    path = write_jsonl(tmp_path / "corpus.jsonl", [{"_id": "a", "body": "x"}])
    renamed = load_arrow_corpus(path, FieldNames(text="body"), tmp_path / "cache", [])
    assert renamed["a"] == {"title": "", "text": "x"}
    write_jsonl(path, [{"_id": "a", "body": "changed"}])
    assert load_arrow_corpus(path, FieldNames(text="body"), tmp_path / "cache", [])["a"]["text"] == "changed"
    assert len(list((tmp_path / "cache" / "corpus").iterdir())) == 2


def test_storage_auto_picks_arrow_by_size(tmp_path, monkeypatch):
    path = write_jsonl(tmp_path / "corpus.jsonl", [{"_id": "a", "text": "x" * 100}])
    assert not use_arrow(path, "auto") and use_arrow(path, "arrow") and not use_arrow(path, "memory")
    monkeypatch.setattr(store, "ARROW_AUTO_BYTES", 50)
    assert use_arrow(path, "auto")


def _files(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_mining_over_arrow_writes_the_same_training_set(beir_dir, tmp_path, tiny_encoder):
    first = mine(make_cfg(beir_dir, tmp_path, tiny_encoder, "memory", "memory-out"))
    second = mine(make_cfg(beir_dir, tmp_path, tiny_encoder, "arrow", "arrow-out"))
    assert list((tmp_path / "cache" / "corpus").iterdir())  # the arrow run stored the corpus
    assert load_from_disk(str(first / "dataset")).to_list() == load_from_disk(str(second / "dataset")).to_list()
    assert (first / "dev.jsonl").read_bytes() == (second / "dev.jsonl").read_bytes()
    counts = [json.loads((o / "manifest.json").read_text())["counts"] for o in (first, second)]
    assert counts[0] == counts[1]


def test_eval_over_arrow_gives_the_same_runs(beir_dir, tmp_path, tiny_encoder, tiny_cross_encoder):
    from conftest import eval_cfg

    from rerankforge.eval.report import read_trec
    from rerankforge.eval.run import evaluate

    runs = []
    for storage in ("memory", "arrow"):
        out = tmp_path / storage
        evaluate(eval_cfg(beir_dir, tiny_encoder, tiny_cross_encoder, out, f"data.storage={storage}"))
        runs.append({name: read_trec(out / "runs" / f"{name}.trec") for name in ("first_stage", "tiny")})
    assert list((tmp_path / "cache" / "corpus").iterdir())
    assert runs[0] == runs[1] and runs[0]["tiny"]
