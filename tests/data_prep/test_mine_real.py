"""Slow: the real all-MiniLM-L6-v2 (offline bundle) on a small real SciFact subset."""

import json
import random

import numpy as np
import pytest
from conftest import SHARED_DATA, write_jsonl, write_qrels
from datasets import load_from_disk

from rerankforge.data_prep.config import MineConfig, MiningConfig
from rerankforge.data_prep.mine import mine
from rerankforge.retrieval.config import DataConfig, EncoderConfig, FirstStageConfig

pytestmark = pytest.mark.slow
SCIFACT = SHARED_DATA / "scifact"


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_qrels(path):
    return [line.split("\t") for line in path.read_text().splitlines()[1:]]


@pytest.fixture(scope="module")
def scifact_subset(tmp_path_factory):
    if not SCIFACT.exists():
        pytest.skip(f"real data not found at {SCIFACT}")
    folder = tmp_path_factory.mktemp("scifact-subset")
    train = read_qrels(SCIFACT / "qrels" / "train.tsv")
    queries = sorted({q for q, _, _ in train})[:20]
    train = [(q, d, int(s)) for q, d, s in train if q in queries]
    corpus = read_jsonl(SCIFACT / "corpus.jsonl")
    positives = {d for _, d, _ in train}
    others = random.Random(0).sample([doc for doc in corpus if doc["_id"] not in positives], 280)
    write_jsonl(folder / "corpus.jsonl", [doc for doc in corpus if doc["_id"] in positives] + others)
    write_jsonl(folder / "queries.jsonl", [q for q in read_jsonl(SCIFACT / "queries.jsonl") if q["_id"] in queries])
    write_qrels(folder / "qrels" / "train.tsv", train)
    return folder, {q: {d for qq, d, _ in train if qq == q} for q in queries}


def test_real_minilm_mines_seven_hard_negatives(scifact_subset, tmp_path):
    folder, positives = scifact_subset
    cfg = MineConfig(data=DataConfig(path=str(folder), eval_split=None, dev_fraction=0),
                     first_stage=FirstStageConfig("dense", EncoderConfig(max_seq_length=128)),
                     mining=MiningConfig(range_max=100, num_negatives=7, random_negatives=1),
                     output_dir=str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"))
    out = mine(cfg)
    ds = load_from_disk(str(out / "dataset"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["encoder"]["source"] in {"bundle", "hf_cache"}
    assert sorted(set(ds["query_id"])) == sorted(positives)
    for row in ds:
        kinds = row["negative_kinds"]
        assert kinds.count("hard") == 7 and kinds.count("easy") == 1
        assert not set(row["negative_ids"]) & positives[row["query_id"]]
        hard = [s for s, k in zip(row["negative_scores"], kinds) if k == "hard"]
        # relative_margin=0.05: every hard negative scores at most 95% of the positive
        assert max(hard) <= row["positive_score"] - 0.05 * abs(row["positive_score"]) + 1e-6
    hard_scores = [s for row in ds for s, k in zip(row["negative_scores"], row["negative_kinds"]) if k == "hard"]
    easy_scores = [s for row in ds for s, k in zip(row["negative_scores"], row["negative_kinds"]) if k == "easy"]
    assert np.mean(hard_scores) > np.mean(easy_scores) + 0.1  # hard negatives really are closer to the query


def test_multi_process_encoding_matches_single_process(tiny_encoder, tmp_path):
    """encoder.multi_process_devices uses sentence-transformers' process pool; results must not change."""
    from rerankforge.retrieval.config import EncoderConfig
    from rerankforge.retrieval.encode import encode_to_file, load_encoder

    texts = [f"the cat {'sat ' * (i % 5)} on mat {i}" for i in range(40)]
    single = load_encoder(EncoderConfig(name_or_path=tiny_encoder, batch_size=4, device="cpu"))
    encode_to_file(single, texts, tmp_path / "single.npy", None, "single")
    multi = load_encoder(EncoderConfig(name_or_path=tiny_encoder, batch_size=4, device="cpu",
                                       multi_process_devices=["cpu", "cpu"]))
    encode_to_file(multi, texts, tmp_path / "multi.npy", None, "multi")
    np.testing.assert_allclose(np.load(tmp_path / "single.npy"), np.load(tmp_path / "multi.npy"), atol=1e-5)
