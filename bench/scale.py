"""Scale: mine a synthetic corpus of 100k and 1M passages and report time and peak RSS per stage.

    python bench/scale.py [--sizes 100000 1000000] [--storages arrow memory] [--queries 1000] [--workdir DIR]

The corpus is built from the shared data's sentences (SciFact and COVID-QA, no download): passage i joins
``--sentences`` sentences drawn by a seeded generator. Query j is a sentence of passage j * stride, its positive.
The bi-encoder is a tiny random BERT (2 layers, hidden 32) with MiniLM's real tokenizer: the machinery is
measured, not the model. Each (size, storage) runs ``rerankforge mine`` in its own process from a cold cache,
with ``index.type=ivfpq``, hybrid candidates (FAISS + bm25s) and ``data.storage``; a sampler thread records the
process's RSS every 0.1 s, so each stage gets its own peak. Prints one table, then the 1M / 100k ratio of peak
RSS (linear growth would be 10x) and, when both storages ran, memory's peak over arrow's.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, data_dir

# load: the corpus into Arrow (or a dict); model: loading the bi-encoder; search: first-stage candidates of the
# queries (encoding them included); select: negatives; write: the dataset; other: the rest (imports, hashing texts for cache keys, validation)
STAGES = ("load", "model", "encode", "index", "bm25", "search", "select", "write", "other")


def sentences() -> list[str]:
    """Every sentence of 30-300 characters in the shared SciFact and COVID-QA corpora, in file order."""
    out = []
    for name in ("scifact", "covidqa"):
        with open(data_dir() / name / "corpus.jsonl", encoding="utf-8") as fh:
            for line in fh:
                text = json.loads(line)["text"]
                out += [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if 30 <= len(s.strip()) <= 300]
    return out


def write_corpus(folder: Path, size: int, queries: int, per_passage: int) -> Path:
    """A BEIR folder of ``size`` synthetic passages and ``queries`` labelled queries."""
    pool, rng = sentences(), random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    stride = size // queries
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as corpus, \
            open(folder / "queries.jsonl", "w", encoding="utf-8") as qfile:
        for i in range(size):
            picked = rng.sample(pool, per_passage)
            corpus.write(json.dumps({"_id": f"p{i:07d}", "title": "", "text": " ".join(picked)}) + "\n")
            if i % stride == 0 and i // stride < queries:
                qfile.write(json.dumps({"_id": f"q{i // stride}", "text": picked[0]}) + "\n")
    (folder / "qrels").mkdir(exist_ok=True)
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"q{j}\tp{j * stride:07d}\t1\n" for j in range(queries)), encoding="utf-8")
    return folder


def tiny_encoder(folder: Path) -> Path:
    """A random 2-layer BERT (hidden 32) with all-MiniLM-L6-v2's tokenizer, as a sentence-transformers model."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    try:
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers import models

    from rerankforge.models.resolve import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("sentence-transformers/all-MiniLM-L6-v2").path)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=512)).save_pretrained(folder / "bert")
    tokenizer.save_pretrained(folder / "bert")
    transformer = models.Transformer(str(folder / "bert"), max_seq_length=128)
    model = SentenceTransformer(modules=[transformer, models.Pooling(32, pooling_mode="mean")], device="cpu")
    model.save(str(folder / "encoder"))
    return folder / "encoder"


class Sampler(threading.Thread):
    """Samples this process's RSS; ``peak(start, end)`` is the largest sample in a time window."""

    def __init__(self):
        super().__init__(daemon=True)
        import psutil

        self.process, self.samples, self.stop = psutil.Process(), [], False

    def run(self):
        while not self.stop:
            self.samples.append((time.perf_counter(), self.process.memory_info().rss))
            time.sleep(0.1)

    def peak(self, windows: list[tuple[float, float]]) -> float:
        """The largest sample inside any of ``windows``; the last sample before a window counts too, so a stage
        shorter than the period still gets one."""
        found = []
        for start, end in windows:
            found += [rss for t, rss in self.samples if t < start][-1:]
            found += [rss for t, rss in self.samples if start <= t <= end]
        return max(found) / 2**20

    def peak_outside(self, windows: list[tuple[float, float]], start: float, end: float) -> float:
        """The largest sample between ``start`` and ``end`` that falls in none of ``windows``."""
        return max(rss for t, rss in self.samples
                   if start <= t <= end and not any(a <= t <= b for a, b in windows)) / 2**20


def child(args) -> None:
    import rerankforge.retrieval.corpus_store as store
    import rerankforge.retrieval.first_stage as first_stage
    import rerankforge.retrieval.loaders as loaders
    from rerankforge.core.config import load_config
    from rerankforge.data_prep.config import MineConfig

    windows: dict[str, list[tuple[float, float]]] = {}

    def timed(name, fn):
        def wrapper(*a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                windows.setdefault(name, []).append((start, time.perf_counter()))
        return wrapper

    loaders.load_corpus = timed("load", loaders.load_corpus)  # storage=memory
    store.load_arrow_corpus = timed("load", store.load_arrow_corpus)
    import rerankforge.retrieval.encode as encode
    import rerankforge.retrieval.index as index

    corpus_encode, plain_encode = timed("encode", encode.encode_to_file), encode.encode_to_file
    # the queries are encoded inside search, which times them
    encode.encode_to_file = lambda enc, texts, path, *a, **k: (corpus_encode if path.name.startswith("corpus")
                                                               else plain_encode)(enc, texts, path, *a, **k)
    index.load_or_build_index = timed("index", index.load_or_build_index)
    first_stage.BM25Index = timed("bm25", first_stage.BM25Index)
    first_stage.FirstStage.search = timed("search", first_stage.FirstStage.search)
    import rerankforge.data_prep.mine as mining

    mining.load_encoder = timed("model", mining.load_encoder)
    mining.select_for_queries = timed("select", mining.select_for_queries)
    mining.write_mine_output = timed("write", mining.write_mine_output)
    cfg = load_config(MineConfig, ROOT / "configs" / "data_prep" / "scifact.yaml", [
        f"data.path={args.corpus}", "data.eval_split=null", "data.dev_fraction=0", f"data.storage={args.storage}",
        f"first_stage.encoder.name_or_path={args.encoder}", "first_stage.encoder.batch_size=256",
        "first_stage.encoder.dtype=float32", "first_stage.index.type=ivfpq", "first_stage.index.nlist=1024",
        "first_stage.method=hybrid", "mining.rescore.cross_encoder=null",
        f"output_dir={args.out}", f"cache_dir={args.cache}"])
    sampler = Sampler()
    sampler.start()
    start = time.perf_counter()
    mining.mine(cfg)
    end = time.perf_counter()
    sampler.stop = True
    stages = {name: {"seconds": sum(b - a for a, b in w), "peak_rss_mb": sampler.peak(w)}
              for name, w in windows.items()}
    every = [window for w in windows.values() for window in w]
    stages["other"] = {"seconds": end - start - sum(s["seconds"] for s in stages.values()),
                       "peak_rss_mb": sampler.peak_outside(every, start, end)}
    print("BENCH " + json.dumps({"total_seconds": end - start, "peak_rss_mb": sampler.peak([(start, end)]),
                                 "stages": stages}))


def run_child(args, size: int, storage: str, corpus: Path, encoder: Path, work: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", "--storage", storage, "--corpus", str(corpus), "--encoder",
           str(encoder), "--out", str(work / f"out-{size}-{storage}"), "--cache", str(work / f"cache-{size}-{storage}")]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH ")]
    if done.returncode != 0 or not lines:
        sys.exit(f"size {size}, storage {storage} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("BENCH "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[100_000, 1_000_000])
    parser.add_argument("--storages", nargs="+", choices=["arrow", "memory"], default=["arrow"])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--sentences", type=int, default=2, help="sentences per passage")
    parser.add_argument("--workdir", help="keep corpora and caches here (default: a temporary folder)")
    for name in ("storage", "corpus", "encoder", "out", "cache"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        encoder = tiny_encoder(work / "model")
        results = {}
        for size in args.sizes:
            start = time.perf_counter()
            corpus = write_corpus(work / f"corpus-{size}", size, args.queries, args.sentences)
            print(f"wrote {size:,} passages in {time.perf_counter() - start:.0f} s", file=sys.stderr)
            for storage in args.storages:
                results[size, storage] = run_child(args, size, storage, corpus, encoder, work)
        report(results)


def report(results: dict) -> None:
    print("| passages | storage | " + " | ".join(f"{s} s / peak MB" for s in STAGES) + " | total s | peak RSS MB |")
    print("|---" * (len(STAGES) + 4) + "|")
    for (size, storage), r in results.items():
        cells = [f"{r['stages'][s]['seconds']:.0f} / {r['stages'][s]['peak_rss_mb']:.0f}" if s in r["stages"] else "-"
                 for s in STAGES]
        print(f"| {size:,} | {storage} | " + " | ".join(cells) + f" | {r['total_seconds']:.0f} | {r['peak_rss_mb']:.0f} |")
    sizes = sorted({size for size, _ in results})
    print()
    for storage in sorted({s for _, s in results}):
        if len(sizes) > 1 and all((n, storage) in results for n in (sizes[0], sizes[-1])):
            small, large = results[sizes[0], storage], results[sizes[-1], storage]
            print(f"{storage}: peak RSS {large['peak_rss_mb'] / small['peak_rss_mb']:.2f}x from {sizes[0]:,} to "
                  f"{sizes[-1]:,} passages ({sizes[-1] / sizes[0]:.0f}x the corpus; linear growth would be "
                  f"{sizes[-1] / sizes[0]:.0f}x)")
    for size in sizes:
        if (size, "arrow") in results and (size, "memory") in results:
            ratio = results[size, "memory"]["peak_rss_mb"] / results[size, "arrow"]["peak_rss_mb"]
            print(f"{size:,} passages: memory / arrow peak RSS {ratio:.2f}x")


if __name__ == "__main__":
    main()
