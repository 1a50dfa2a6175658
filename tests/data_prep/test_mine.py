"""End to end on a tiny BEIR folder with a tiny random bi-encoder: files, counts, determinism, atomicity."""

import json
from pathlib import Path

import pytest
from conftest import write_qrels
from datasets import load_from_disk

from rerankforge.core.io import MANIFEST
from rerankforge.data_prep.config import MineConfig, MiningConfig
from rerankforge.data_prep.mine import load_labelled_data, mine
from rerankforge.retrieval.config import DataConfig, EncoderConfig, FirstStageConfig


def make_cfg(beir_dir: Path, tmp_path: Path, encoder: str, candidates: str = "dense", **mining) -> MineConfig:
    return MineConfig(data=DataConfig(path=str(beir_dir), dev_fraction=0),
                      first_stage=FirstStageConfig(candidates, EncoderConfig(name_or_path=encoder, batch_size=8)),
                      mining=MiningConfig(range_max=20, num_negatives=4, **mining),
                      output_dir=str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"))


def read(out: Path):
    return load_from_disk(str(out / "dataset")), json.loads((out / MANIFEST).read_text())


def test_mine_writes_dataset_manifest_and_config(beir_dir, tmp_path, tiny_encoder):
    out = mine(make_cfg(beir_dir, tmp_path, tiny_encoder))
    ds, manifest = read(out)
    assert (out / "config.yaml").read_text().startswith("data:")
    assert manifest["config"]["mining"]["num_negatives"] == 4
    assert manifest["encoder"]["source"] == "local"
    assert set(manifest["inputs"]) == {"corpus", "queries", "qrels", "eval_qrels"}
    assert len(manifest["inputs"]["corpus"]["sha256"]) == 64
    # one row per (query, positive): 6 queries, q0 and q1 have two positives
    assert len(ds) == 8 and sorted(set(ds["query_id"])) == [f"q{i}" for i in range(6)]
    positives = {(r["query_id"], r["positive_id"]) for r in ds}
    qrels_pos = {}
    for q, d in positives:
        qrels_pos.setdefault(q, set()).add(d)
    for row in ds:
        assert not set(row["negative_ids"]) & qrels_pos[row["query_id"]]  # no negative is a positive
        assert len(row["negatives"]) == len(row["negative_scores"]) == len(row["negative_ids"])
        hard = [s for s, kind in zip(row["negative_scores"], row["negative_kinds"]) if kind == "hard"]
        assert hard == sorted(hard, reverse=True)  # in rank order; random ones (filling short rows) follow


def test_manifest_counts_add_up(beir_dir, tmp_path, tiny_encoder):
    write_qrels(beir_dir / "qrels" / "train.tsv", [(f"q{i}", f"d{i}", 1) for i in range(5)] + [("q5", "d9", 0)])
    ds, manifest = read(mine(make_cfg(beir_dir, tmp_path, tiny_encoder, random_negatives=2)))
    c = manifest["counts"]
    assert c["queries_labelled"] == c["queries_mined"] + c["queries_skipped_no_positive"] == 6
    assert c["rows"] == len(ds) == 5
    cand = dict(c["candidates"])
    assert cand.pop("total") == sum(cand.values())
    assert c["hard_negatives"] == cand["selected"]
    filled = sum(4 - kinds.count("hard") for kinds in ds["negative_kinds"])  # short rows: random ones fill them
    assert c["easy_negatives"] == 2 * c["queries_mined"] + filled
    assert sum(len(n) for n in ds["negative_ids"]) == c["hard_negatives"] + c["easy_negatives"]
    assert sum(kinds.count("easy") for kinds in ds["negative_kinds"]) == c["easy_negatives"]


def test_same_seed_gives_byte_identical_output(beir_dir, tmp_path, tiny_encoder):
    cfg = make_cfg(beir_dir, tmp_path, tiny_encoder, sampling_strategy="random", random_negatives=1)
    first = mine(cfg)
    snapshot = {p.relative_to(first): p.read_bytes() for p in sorted(first.rglob("*")) if p.is_file()}
    cfg.output_dir, cfg.cache_dir = str(tmp_path / "again"), str(tmp_path / "cold-cache")  # encode from scratch
    second = Path(mine(cfg))
    again = {p.relative_to(second): p.read_bytes() for p in sorted(second.rglob("*")) if p.is_file()}
    assert snapshot.keys() == again.keys()
    for name in snapshot:
        if name.name == "config.yaml" or name.name == MANIFEST:  # they name the output folder
            continue
        assert snapshot[name] == again[name], name
    m1, m2 = (json.loads(p.read_text()) for p in (first / MANIFEST, second / MANIFEST))
    for m in (m1, m2):  # the two runs differ only in where they wrote and cached
        m["config"].pop("output_dir"), m["config"].pop("cache_dir")
    assert m1 == m2


def test_embeddings_are_cached_and_reused(beir_dir, tmp_path, tiny_encoder, monkeypatch):
    cfg = make_cfg(beir_dir, tmp_path, tiny_encoder)
    mine(cfg)
    cached = sorted(p.name for p in (tmp_path / "cache" / "embeddings").iterdir())
    assert any(n.startswith("corpus-") and n.endswith(".npy") for n in cached)
    assert any(n.endswith(".flat.faiss") for n in cached)
    import rerankforge.retrieval.encode as encode

    monkeypatch.setattr(encode, "encode_to_file", lambda *a, **k: pytest.fail("re-encoded a cached corpus"))
    mine(cfg)


def test_failed_run_leaves_no_output(beir_dir, tmp_path, tiny_encoder, monkeypatch):
    import rerankforge.data_prep.output as output

    cfg = make_cfg(beir_dir, tmp_path, tiny_encoder)
    monkeypatch.setattr(output, "write_json", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        mine(cfg)
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.partial-*"))


@pytest.mark.parametrize("candidates", ["bm25", "hybrid"])
def test_lexical_and_hybrid_candidates(beir_dir, tmp_path, tiny_encoder, candidates):
    ds, manifest = read(mine(make_cfg(beir_dir, tmp_path, tiny_encoder, candidates=candidates, relative_margin=None)))
    assert manifest["counts"]["hard_negatives"] > 0
    for row in ds:
        assert row["positive_id"] not in row["negative_ids"]


@pytest.mark.parametrize("index_type", ["ivf", "hnsw"])
def test_approximate_indexes(beir_dir, tmp_path, tiny_encoder, index_type):
    cfg = make_cfg(beir_dir, tmp_path, tiny_encoder, relative_margin=None)
    index = cfg.first_stage.index
    index.type, index.nlist, index.nprobe = index_type, 1, 1
    _, manifest = read(mine(cfg))
    assert manifest["counts"]["hard_negatives"] > 0
    assert list((tmp_path / "cache" / "embeddings").glob(f"*.{index_type}.faiss"))


def test_cross_encoder_rescoring_adds_teacher_scores(beir_dir, tmp_path, tiny_encoder, tiny_cross_encoder):
    cfg = make_cfg(beir_dir, tmp_path, tiny_encoder, random_negatives=1)
    cfg.mining.rescore.cross_encoder = tiny_cross_encoder
    ds, manifest = read(mine(cfg))
    assert {"positive_rescore", "negative_rescores"} <= set(ds.column_names)
    for row in ds:
        assert len(row["negative_rescores"]) == len(row["negative_ids"])
        assert all(0.0 <= s <= 1.0 for s in row["negative_rescores"] + [row["positive_rescore"]])


def test_max_queries_limits_and_counts(beir_dir, tmp_path, tiny_encoder):
    cfg = make_cfg(beir_dir, tmp_path, tiny_encoder)
    cfg.max_queries = 2
    ds, manifest = read(mine(cfg))
    assert sorted(set(ds["query_id"])) == ["q0", "q1"]
    assert manifest["counts"]["queries_beyond_max_queries"] == 4


def test_matches_sentence_transformers_mine_hard_negatives(beir_dir, tmp_path, tiny_encoder):
    """Our selection is written by hand (pure, id-based, with a fate tally); check it against the library."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import mine_hard_negatives

    from rerankforge.core.text import doc_text

    cfg = make_cfg(beir_dir, tmp_path, tiny_encoder, relative_margin=0.0)
    cfg.mining.range_max = 20  # half of the 40 documents: the most a window may take (negatives.fit_window)
    ours, manifest = read(mine(cfg))
    data = load_labelled_data(cfg)
    corpus = [doc_text(data.corpus[d]) for d in sorted(data.corpus)]
    pairs = Dataset.from_dict({"query": list(ours["query"]), "positive": list(ours["positive"])})
    theirs = mine_hard_negatives(pairs, SentenceTransformer(tiny_encoder, device="cpu"), corpus=corpus,
                                 range_max=20, relative_margin=0.0, num_negatives=4, output_format="labeled-list",
                                 use_faiss=True, batch_size=8, verbose=False)
    expected = {row["query"]: row["positive"][1:] for row in theirs}  # [positive, *negatives] per row

    def hard(row):  # ours fills rows short of hard negatives with random ones; theirs leaves them out
        return [text for text, kind in zip(row["negatives"], row["negative_kinds"]) if kind == "hard"]

    assert all(not hard(row) for row in ours if row["query"] not in expected)
    compared = [row for row in ours if row["query"] in expected]
    assert sum(len(hard(row)) for row in compared) >= 8  # the margin kept some, and dropped some
    assert 0 < manifest["counts"]["candidates"]["relative_margin"]
    for row in compared:
        assert hard(row) == expected[row["query"]], row["query_id"]


def test_text_folder_corpus_chunked_by_encoder_tokens(tmp_path, tiny_encoder):
    from conftest import write_jsonl

    docs = tmp_path / "docs"
    (docs / "guides").mkdir(parents=True)
    (docs / "guides" / "cats.md").write_text("the cat sat on the mat . " * 6)
    (docs / "dogs.txt").write_text("dogs run and eat food with water . " * 4)
    (docs / "fish.txt").write_text("fish eat food in water and the bird eats fish . " * 3)
    write_jsonl(tmp_path / "q.jsonl", [{"_id": "q1", "text": "what do cats sit on"}])
    write_qrels(tmp_path / "qrels.tsv", [("q1", "guides/cats.md#0", 1)])
    cfg = MineConfig(data=DataConfig(corpus=str(docs), queries=str(tmp_path / "q.jsonl"),
                                     qrels=str(tmp_path / "qrels.tsv"), eval_split=None),
                     first_stage=FirstStageConfig("dense", EncoderConfig(name_or_path=tiny_encoder)),
                     mining=MiningConfig(relative_margin=None, num_negatives=3),
                     output_dir=str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"))
    cfg.data.chunking.size, cfg.data.chunking.overlap = 16, 4
    data = load_labelled_data(cfg)
    assert sorted(data.corpus)[:2] == ["dogs.txt#0", "dogs.txt#1"]
    assert data.corpus["guides/cats.md#0"]["text"].startswith("the cat sat on the mat")
    ds, _ = read(mine(cfg))
    assert ds[0]["positive_id"] == "guides/cats.md#0" and len(ds[0]["negative_ids"]) == 3


def test_auto_first_stage_is_the_best_on_the_dev_split(tmp_path, tiny_encoder):
    from conftest import make_beir

    beir = make_beir(tmp_path / "beir", n_train=16, n_test=3)
    cfg = make_cfg(beir, tmp_path, tiny_encoder, candidates="auto", relative_margin=None)
    cfg.data.dev_fraction, cfg.data.dev_min_queries = 0.25, 2
    _, manifest = read(mine(cfg))
    picked = manifest["config"]["first_stage"]["method"]
    scores = manifest["first_stage_selection"]
    assert set(scores) == {"dense", "bm25", "hybrid"} and scores[picked] == max(scores.values())
    assert len(manifest["dev_query_ids"]) == 4


def test_auto_first_stage_without_a_dev_split_is_a_config_problem(beir_dir, tmp_path, tiny_encoder):
    from rerankforge.core.problems import DataError

    with pytest.raises(DataError, match="first_stage.method=auto picks the first stage on the dev split"):
        mine(make_cfg(beir_dir, tmp_path, tiny_encoder, candidates="auto"))


@pytest.mark.parametrize("candidates", ["dense", "bm25"])
def test_document_level_qrels_train_on_the_best_passage_of_each_relevant_document(tmp_path, tiny_encoder,
                                                                                 candidates):
    import numpy as np
    from conftest import make_long_beir

    from rerankforge.retrieval.config import ChunkConfig

    beir = make_long_beir(tmp_path / "long", n_train=12)
    cfg = MineConfig(data=DataConfig(path=str(beir), dev_fraction=0.25, dev_min_queries=3, dev_depth=4,
                                     chunking=ChunkConfig(size=100, overlap=0, unit="chars", mode="all")),
                     first_stage=FirstStageConfig(candidates, EncoderConfig(name_or_path=tiny_encoder, batch_size=8)),
                     mining=MiningConfig(range_max=20, num_negatives=3, relative_margin=None),
                     output_dir=str(tmp_path / "mined"), cache_dir=str(tmp_path / "cache"))
    out = mine(cfg)
    rows = load_from_disk(str(out / "dataset"))
    lines = (beir / "qrels" / "train.tsv").read_text().splitlines()[1:]
    qrels = {line.split("\t")[0]: line.split("\t")[1] for line in lines}
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["counts"]["corpus_documents"] == 12 and manifest["counts"]["corpus_passages"] > 12
    assert manifest["counts"]["positives_from_documents"] == len(rows) + len(manifest["dev_query_ids"])
    data = load_labelled_data(cfg)
    for row in rows:
        relevant = qrels[row["query_id"]]
        assert row["positive_id"].rsplit("#", 1)[0] == relevant  # a passage of the relevant document
        assert all(n.rsplit("#", 1)[0] != relevant for n in row["negative_ids"])  # none of its passages
        if candidates == "dense":  # the relevant document's passage closest to the query
            from rerankforge.retrieval.encode import load_encoder

            encoder = load_encoder(cfg.first_stage.encoder)
            chunks = data.documents.chunks[relevant]
            vectors = encoder.model.encode([row["query"]] + [f"{data.corpus[c]['title']} {data.corpus[c]['text']}"
                                                              for c in chunks], normalize_embeddings=True)
            assert row["positive_id"] == chunks[int(np.argmax(vectors[1:] @ vectors[0]))]
    dev = [json.loads(line) for line in (out / "dev.jsonl").read_text().splitlines()]
    assert dev and all("#" not in d for r in dev for d in r["doc_ids"]) and all(len(r["doc_ids"]) <= 4 for r in dev)
    assert all(set(r["qrels"]) == {qrels[r["query_id"]]} for r in dev)


def small_beir(folder: Path, n_docs: int) -> Path:
    from conftest import make_beir

    return make_beir(folder, n_docs=n_docs, n_train=6, n_test=2)


def test_a_small_corpus_gives_every_row_all_its_negatives(tmp_path, tiny_encoder):
    """The quickstart's window (range_max 2000) on 14 passages: cut to half the corpus, and rows short of hard
    negatives filled with random ones, so no training row is dropped for want of negatives."""
    cfg = make_cfg(small_beir(tmp_path / "beir", 14), tmp_path, tiny_encoder, random_negatives=2)
    cfg.mining.range_max, cfg.mining.num_negatives, cfg.mining.relative_margin = 2000, 5, 0.05
    ds, manifest = read(mine(cfg))
    assert manifest["config"]["mining"]["range_max"] == 7
    assert all(len(row["negative_ids"]) == 7 for row in ds)
    assert manifest["counts"]["easy_negatives"] >= 2 * manifest["counts"]["queries_mined"]
    for row in ds:  # random ones come from outside the window: never a positive, never twice
        assert len(set(row["negative_ids"])) == 7 and row["positive_id"] not in row["negative_ids"]


def test_given_negatives_come_first_and_mining_fills_the_rest(beir_dir, tmp_path, tiny_encoder):
    from conftest import write_jsonl

    negatives = write_jsonl(tmp_path / "negatives.jsonl", [{"query_id": "q2", "negative_ids": ["d30", "d31"]},
                                                           {"query_id": "q3", "negative_ids": ["d9", "d8"]}])
    cfg = make_cfg(beir_dir, tmp_path, tiny_encoder, relative_margin=None)
    cfg.data.negatives = str(negatives)
    ds, manifest = read(mine(cfg))
    rows = {r["query_id"]: r for r in ds}
    assert rows["q2"]["negative_ids"][:2] == ["d30", "d31"] and rows["q2"]["negative_kinds"][:3] == [
        "given", "given", "hard"]
    assert len(rows["q2"]["negative_ids"]) == 4 and rows["q3"]["negative_ids"][0] == "d8"  # d9: q3's positive
    assert manifest["counts"]["given_negatives"] == 3 and manifest["counts"]["candidates"]["given"] >= 1
    cfg.mining.mine_more, cfg.output_dir = False, str(tmp_path / "given-only")
    ds, _ = read(mine(cfg))
    rows = {r["query_id"]: r for r in ds}
    assert rows["q2"]["negative_kinds"] == ["given", "given", "easy", "easy"]  # no mining: random ones fill


def test_given_negatives_naming_unknown_documents_are_reported(beir_dir, tmp_path, tiny_encoder):
    from conftest import write_jsonl

    from rerankforge.core.problems import DataError

    cfg = make_cfg(beir_dir, tmp_path, tiny_encoder)
    cfg.data.negatives = str(write_jsonl(tmp_path / "neg.jsonl", [{"query_id": "q2", "negative_ids": ["nope"]},
                                                                    {"query": "q3"}]))
    with pytest.raises(DataError) as err:
        load_labelled_data(cfg)
    assert "1 document id(s) in the negatives are not in the corpus: 'nope'" in str(err.value)
    assert "neg.jsonl:2" in str(err.value) and '"negative_ids"' in str(err.value)


def test_too_few_queries_for_an_automatic_first_stage_pick_is_found_before_encoding(beir_dir, tmp_path,
                                                                                     tiny_encoder, monkeypatch):
    import rerankforge.data_prep.mine as mining
    from rerankforge.core.problems import DataError

    monkeypatch.setattr(mining, "load_encoder", lambda cfg: pytest.fail("encoded before the check"))
    cfg = make_cfg(beir_dir, tmp_path, tiny_encoder, candidates="auto")
    cfg.data.dev_fraction, cfg.max_queries = 0.1, 3
    with pytest.raises(DataError, match="3 labelled queries leave no dev split"):
        mine(cfg)


def test_mining_nothing_more_without_given_negatives_is_a_config_problem(beir_dir, tmp_path, tiny_encoder):
    from rerankforge.data_prep.config import check_mine_config

    cfg = make_cfg(beir_dir, tmp_path, tiny_encoder)
    cfg.mining.mine_more = False
    assert any("mining.mine_more=false mines no hard negatives, and data.negatives gives none" in p
               for p in check_mine_config(cfg))
    cfg.data.negatives = str(tmp_path / "negatives.jsonl")
    assert not check_mine_config(cfg)
