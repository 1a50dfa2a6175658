"""Every bad input is reported with its file and line, and all problems come together."""

import json
from pathlib import Path

import pytest
from conftest import make_beir, write_jsonl, write_qrels

from rerankforge.core.problems import DataError, Problem
from rerankforge.data_prep.config import MineConfig
from rerankforge.data_prep.mine import load_labelled_data
from rerankforge.retrieval.config import ChunkConfig, DataConfig, FieldNames
from rerankforge.retrieval.loaders import load_corpus, load_qrels, load_queries, load_text_folder


def cfg_for(folder: Path, **data) -> MineConfig:
    return MineConfig(data=DataConfig(path=str(folder), **data))


def problems_of(cfg: MineConfig) -> str:
    with pytest.raises(DataError) as info:
        load_labelled_data(cfg)
    return str(info.value)


def test_valid_beir_folder_loads(beir_dir):
    data = load_labelled_data(cfg_for(beir_dir))
    assert len(data.corpus) == 40 and data.corpus["d3"]["title"] == "doc 3"
    assert data.positives["q0"] == ["d0", "d1"]  # relevance 2 counts; sorted
    assert set(data.positives) == {f"q{i}" for i in range(6)}
    assert data.counts["corpus_documents"] == 40


def test_malformed_json_names_file_and_line(beir_dir):
    corpus = beir_dir / "corpus.jsonl"
    lines = corpus.read_text().splitlines()
    lines[2] = '{"_id": "d2", "text": broken'
    corpus.write_text("\n".join(lines) + "\n")
    message = problems_of(cfg_for(beir_dir))
    assert f"{corpus}:3: malformed JSON" in message


def test_malformed_tsv_names_file_and_line(beir_dir):
    qrels = beir_dir / "qrels" / "train.tsv"
    qrels.write_text(qrels.read_text() + "q5\td9\n" + "q5\td8\tyes\n")
    message = problems_of(cfg_for(beir_dir))
    n = len(qrels.read_text().splitlines())
    assert f"{qrels}:{n - 1}: expected 3 columns (query-id, corpus-id, score), got 2." in message
    assert f"{qrels}:{n}: relevance 'yes' is not a number." in message


def test_duplicate_ids(beir_dir):
    corpus = beir_dir / "corpus.jsonl"
    corpus.write_text(corpus.read_text() + json.dumps({"_id": "d1", "text": "again"}) + "\n")
    assert "1 duplicate document id(s): 'd1'. Ids must be unique." in problems_of(cfg_for(beir_dir))


def test_unknown_ids_give_count_and_first_few(beir_dir):
    write_qrels(beir_dir / "qrels" / "train.tsv", [("q0", "d0", 1)] + [("q1", f"ghost{i}", 1) for i in range(7)]
                + [("nobody", "d0", 1)])
    message = problems_of(cfg_for(beir_dir))
    assert "7 document id(s) in the qrels are not in the corpus: 'ghost0', 'ghost1', 'ghost2', 'ghost3', " \
           "'ghost4', ... (2 more)." in message
    assert "1 query id(s) in the qrels are not in the queries file: 'nobody'." in message


def test_empty_corpus(beir_dir):
    (beir_dir / "corpus.jsonl").write_text("")
    assert "the corpus is empty" in problems_of(cfg_for(beir_dir))


def test_all_problems_are_reported_together(beir_dir):
    (beir_dir / "corpus.jsonl").write_text((beir_dir / "corpus.jsonl").read_text() + "not json\n")
    (beir_dir / "queries.jsonl").write_text((beir_dir / "queries.jsonl").read_text() + '{"_id": "q0", "text": "x"}\n')
    write_qrels(beir_dir / "qrels" / "train.tsv", [("q0", "ghost", 1), ("t0", "d0", 1)])
    message = problems_of(cfg_for(beir_dir))
    for expected in ("malformed JSON", "duplicate query id(s): 'q0'", "not in the corpus: 'ghost'",
                     "also appear in the evaluation split: 't0'"):
        assert expected in message
    assert message.startswith("Found 4 problem(s)")


def test_queries_without_positive_are_skipped_with_warning(beir_dir, caplog):
    write_qrels(beir_dir / "qrels" / "train.tsv", [("q0", "d0", 1), ("q1", "d1", 0), ("q2", "d2", 0)])
    data = load_labelled_data(cfg_for(beir_dir))
    assert list(data.positives) == ["q0"]
    assert data.counts["queries_skipped_no_positive"] == 2
    assert "2 query(ies) have no positive (relevance >= 1) and are skipped: 'q1', 'q2'." in caplog.text


def test_train_query_in_eval_split_is_refused(beir_dir):
    write_qrels(beir_dir / "qrels" / "test.tsv", [("q3", "d1", 1)])
    assert "1 training query id(s) also appear in the evaluation split: 'q3'." in problems_of(cfg_for(beir_dir))


@pytest.mark.parametrize("mode", ["warn", "drop", "error"])
def test_same_text_in_eval_split(beir_dir, caplog, mode):
    queries = [json.loads(line) for line in (beir_dir / "queries.jsonl").read_text().splitlines()]
    queries.append({"_id": "t9", "text": "  " + next(q for q in queries if q["_id"] == "q2")["text"].upper()})
    write_jsonl(beir_dir / "queries.jsonl", queries)
    write_qrels(beir_dir / "qrels" / "test.tsv", [("t9", "d5", 1)])
    cfg = cfg_for(beir_dir, eval_text_overlap=mode)
    if mode == "error":
        assert "1 training query(ies) have the same text as an evaluation query: 'q2'" in problems_of(cfg)
        return
    data = load_labelled_data(cfg)
    assert ("q2" in data.positives) == (mode == "warn")
    assert "same text as an evaluation query: 'q2'" in caplog.text


def test_missing_files_and_fields(beir_dir):
    (beir_dir / "qrels" / "train.tsv").unlink()
    assert "qrels file not found" in problems_of(cfg_for(beir_dir))
    problems: list[Problem] = []
    write_jsonl(beir_dir / "c.jsonl", [{"id": "x", "body": "y"}])
    assert load_corpus(beir_dir / "c.jsonl", FieldNames(), problems) == {}
    assert "missing field '_id' (fields present: id, body). Set data.fields" in str(problems[0])


def test_config_problems_come_before_data(tmp_path):
    cfg = MineConfig(data=DataConfig(path=None))
    cfg.mining.num_negatives = 0
    message = problems_of(cfg)
    assert "give data.path (a BEIR folder) or all of data.corpus" in message
    assert "mining.num_negatives must be >= 1, got 0." in message


def test_other_formats_with_custom_field_names(tmp_path):
    import pandas as pd
    from datasets import Dataset

    fields = FieldNames(id="pid", title="heading", text="body", query_id="qid", doc_id="pid", score="label")
    pd.DataFrame({"pid": ["a", "b"], "heading": ["A", "B"], "body": ["alpha", "beta"]}).to_parquet(tmp_path / "c.parquet")
    pd.DataFrame({"pid": ["q1"], "body": ["what is alpha"]}).to_csv(tmp_path / "q.csv", index=False)
    Dataset.from_dict({"qid": ["q1"], "pid": ["a"], "label": [1]}).save_to_disk(str(tmp_path / "qrels_ds"))
    problems: list[Problem] = []
    assert load_corpus(tmp_path / "c.parquet", fields, problems) == {"a": {"title": "A", "text": "alpha"},
                                                                      "b": {"title": "B", "text": "beta"}}
    assert load_queries(tmp_path / "q.csv", fields, problems) == {"q1": "what is alpha"}
    assert load_qrels(tmp_path / "qrels_ds", fields, problems) == {"q1": {"a": 1}}
    assert problems == []


def test_explicit_files_instead_of_beir_folder(tmp_path, beir_dir):
    cfg = MineConfig(data=DataConfig(corpus=str(beir_dir / "corpus.jsonl"), queries=str(beir_dir / "queries.jsonl"),
                                     qrels=str(beir_dir / "qrels" / "train.tsv"), eval_split=None))
    assert len(load_labelled_data(cfg).positives) == 6


def test_unsupported_file_type_is_a_problem(tmp_path, beir_dir):
    (tmp_path / "corpus.xml").write_text("<x/>")
    message = problems_of(cfg_for(beir_dir, corpus=str(tmp_path / "corpus.xml")))
    assert f"{tmp_path / 'corpus.xml'}: unsupported file type '.xml'. Expected one of .jsonl" in message
    assert "the corpus is empty" in message


def test_text_folder_ids_from_path_and_index(tmp_path):
    (tmp_path / "manuals").mkdir()
    (tmp_path / "manuals" / "pump_guide.md").write_text("x" * 10)
    (tmp_path / "notes.txt").write_text("short")
    (tmp_path / "skip.pdf").write_text("ignored")
    corpus = load_text_folder(tmp_path, ChunkConfig(size=6, overlap=2, unit="chars"))
    assert corpus == {"manuals/pump_guide.md#0": {"title": "pump guide", "text": "xxxxxx"},
                      "manuals/pump_guide.md#1": {"title": "pump guide", "text": "xxxxxx"},
                      "notes.txt#0": {"title": "notes", "text": "short"}}


def test_chunking_config_is_checked():
    with pytest.raises(ValueError, match="need size > 0 and 0 <= overlap < size, got size=4, overlap=4"):
        ChunkConfig(size=4, overlap=4)


@pytest.mark.parametrize("suffix", [".jsonl", ".tsv"])
def test_a_latin1_file_is_one_problem_naming_the_file_the_byte_offset_and_the_fix(tmp_path, suffix):
    from rerankforge.core.readers import read_records

    good = '{"_id": "q1", "text": "caf\u00e9 au lait"}\n' if suffix == ".jsonl" else "_id\ttext\nq1\tcaf\u00e9 au lait\n"
    bad = '{"_id": "q2", "text": "cr\u00e8me br\u00fbl\u00e9e"}\n' if suffix == ".jsonl" else "q2\tcr\u00e8me br\u00fbl\u00e9e\n"
    path = tmp_path / f"queries{suffix}"
    path.write_bytes(good.encode("utf-8") + bad.encode("latin-1"))
    problems = []
    list(read_records(path, problems))
    offset = len(good.encode("utf-8")) + bad.encode("latin-1").index(b"\xe8")
    assert len(problems) == 1
    message = str(problems[0])
    assert message.startswith(f"{path}: not UTF-8: byte 0xe8 at byte offset {offset} (line {good.count(chr(10)) + 1})")
    assert f"iconv -f latin1 -t utf-8 {path} > {tmp_path / ('queries.utf8' + suffix)}" in message


def test_first_undecodable_finds_the_offset_across_blocks(tmp_path):
    from rerankforge.core.readers import first_undecodable

    path = tmp_path / "big.jsonl"  # a two-byte character cut by the 1 MiB block boundary, then a Latin-1 byte
    path.write_bytes(b"a" * ((1 << 20) - 1) + "\u00e9".encode() + b"xx\xe9")
    assert first_undecodable(path) == ((1 << 20) + 3, 0xE9)
    path.write_bytes("\u00e9t\u00e9".encode() * 1000)
    assert first_undecodable(path) is None


@pytest.mark.parametrize("content, kind", [(b"\x1f\x8b\x08\x00" + bytes(200), "gzip-compressed"),
                                           (bytes(range(256)) * 4, "binary data"),
                                           ("\ufeff_id\ttext".encode("utf-16"), "UTF-16 text")])
def test_a_binary_file_is_one_problem_saying_what_it_looks_like(tmp_path, content, kind):
    from rerankforge.core.problems import DataError
    from rerankforge.data_prep.config import MineConfig
    from rerankforge.data_prep.mine import load_labelled_data
    from rerankforge.retrieval.config import DataConfig

    beir = make_beir(tmp_path / "beir")
    (beir / "queries.jsonl").write_bytes(content)
    with pytest.raises(DataError) as err:
        load_labelled_data(MineConfig(data=DataConfig(path=str(beir), dev_fraction=0)))
    message = str(err.value)
    assert f"{beir / 'queries.jsonl'}: not UTF-8 text ({kind}" in message and "first bytes" in message
    assert message.count("not UTF-8") == 1  # one problem for the file, not one per line


def test_a_text_folder_reports_a_latin1_file_and_keeps_the_others(tmp_path):
    from rerankforge.retrieval.config import ChunkConfig
    from rerankforge.retrieval.loaders import load_text_folder

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "good.txt").write_text("plain text", encoding="utf-8")
    (tmp_path / "docs" / "bad.txt").write_bytes("na\u00efve".encode("latin-1"))
    problems = []
    corpus = load_text_folder(tmp_path / "docs", ChunkConfig(mode="off"), problems=problems)
    assert list(corpus) == ["good.txt"] and "bad.txt: not UTF-8: byte 0xef at byte offset 2" in str(problems[0])


def test_a_byte_order_mark_is_not_data(tmp_path):
    from rerankforge.core.readers import read_records

    (tmp_path / "q.jsonl").write_text('\ufeff{"_id": "q1", "text": "a"}\n', encoding="utf-8")
    (tmp_path / "qrels.tsv").write_text("\ufeffquery-id\tcorpus-id\tscore\nq1\td1\t1\n", encoding="utf-8")
    problems = []
    assert [r for _, r in read_records(tmp_path / "q.jsonl", problems)] == [{"_id": "q1", "text": "a"}]
    assert [r for _, r in read_records(tmp_path / "qrels.tsv", problems)] == [
        {"query-id": "q1", "corpus-id": "d1", "score": "1"}]
    assert not problems


def test_a_json_array_and_windows_1252_bytes_get_the_command_that_fixes_them(tmp_path):
    from rerankforge.core.readers import read_records

    (tmp_path / "q.json").write_text('[{"_id": "q1", "text": "a"},\n {"_id": "q2", "text": "b"}]\n', encoding="utf-8")
    (tmp_path / "d.jsonl").write_bytes('{"_id": "d1", "text": "\u201cquoted\u201d"}\n'.encode("cp1252"))
    problems = []
    list(read_records(tmp_path / "q.json", problems))
    list(read_records(tmp_path / "d.jsonl", problems))
    assert len(problems) == 2
    assert f"a JSON array; expected JSON Lines, one object a line. Convert it: jq -c '.[]' {tmp_path / 'q.json'}" in str(
        problems[0])
    assert "byte 0x93" in str(problems[1]) and "iconv -f cp1252 -t utf-8" in str(problems[1])
