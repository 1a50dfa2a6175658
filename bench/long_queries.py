"""Long queries: does a reranker gain from reading more of each query than ``max_query_length=64`` tokens?

    python bench/long_queries.py --model runs/bench-own-data/scifact-splitless/qs/train/final \
        --cache runs/bench-own-data/scifact-splitless/cache

SciFact's 300 test claims, each made long the way a conversational RAG system makes them: three earlier turns (other
claims, from the train split, seeded) come before it, so a query is ~80-100 tokens and its last sentence is the one
the labels answer. ``rerankforge eval`` reranks the hybrid top 20 with the checkpoint's fitted fusion, once per
``--lengths`` value of ``max_query_length`` (64, the default, cuts into the claim); the original short claims are
the reference row. The table: nDCG@10 of the first stage, the reranker alone and fused, and the paired t-test of
each longer limit against 64. The checkpoint was trained with 64-token queries: this measures reading, not training.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from common import data_dir

TURNS = 3


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a SciFact reranker that never trained on the test claims")
    parser.add_argument("--cache", default=None, help="an embedding cache holding SciFact's corpus (optional)")
    parser.add_argument("--data-dir", default=str(data_dir()))
    parser.add_argument("--out", default="runs/bench-long-queries")
    parser.add_argument("--lengths", default="64,128", help="max_query_length values; the first is the baseline")
    return parser.parse_args(argv)


def long_query_set(source: Path, target: Path, seed: int = 0) -> Path:
    """SciFact with each test claim preceded by ``TURNS`` train claims (a conversation's earlier turns)."""
    target.mkdir(parents=True, exist_ok=True)
    queries = {q["_id"]: q["text"] for q in map(json.loads, (source / "queries.jsonl").read_text().splitlines())}
    test = (source / "qrels" / "test.tsv").read_text().splitlines()
    train_ids = sorted({row.split("\t")[0] for row in (source / "qrels" / "train.tsv").read_text().splitlines()[1:]})
    rng = random.Random(seed)
    with open(target / "queries.jsonl", "w", encoding="utf-8") as fh:
        for qid in sorted({row.split("\t")[0] for row in test[1:]}):
            turns = [queries[t] for t in rng.sample(train_ids, TURNS)]
            fh.write(json.dumps({"_id": qid, "text": " ".join(turns + [queries[qid]])}) + "\n")
    (target / "qrels").mkdir(exist_ok=True)
    (target / "qrels" / "test.tsv").write_text("\n".join(test) + "\n", encoding="utf-8")
    corpus = target / "corpus.jsonl"
    if not corpus.exists():
        corpus.symlink_to((source / "corpus.jsonl").resolve())
    return target


def run_eval(args, data: Path, name: str, max_query_length: int) -> dict:
    """One ``rerankforge eval``; ``per_query``: nDCG@10 per query of the first stage, the reranker alone and fused."""
    from rerankforge.core.config import load_config
    from rerankforge.core.metrics import per_query
    from rerankforge.eval.config import EvalConfig
    from rerankforge.eval.report import read_trec
    from rerankforge.eval.run import evaluate
    from rerankforge.retrieval.config import FieldNames
    from rerankforge.retrieval.loaders import load_qrels

    out = Path(args.out) / name
    overrides = [f"data.path={data}", "first_stage.method=hybrid", "retrieve.top_k=100",
                 "first_stage.encoder.dtype=auto", f"output_dir={out}", "generate.kind=none",
                 f"rerankers.finetuned.model={args.model}",
                 "rerankers.finetuned.depth=20", "rerankers.finetuned.dtype=auto", "rerankers.finetuned.max_length=256",
                 f"rerankers.finetuned.max_query_length={max_query_length}", "rerankers.finetuned.fusion.method=auto",
                 "metrics=[ndcg@10]", "plots=false", "retrieve.compare=[]"]
    if args.cache:
        overrides.append(f"cache_dir={args.cache}")
    start = time.perf_counter()
    evaluate(load_config(EvalConfig, None, overrides), command="bench/long_queries.py")
    seconds = time.perf_counter() - start
    qrels = load_qrels(data / "qrels" / "test.tsv", FieldNames(), [])
    return {"seconds": seconds, "per_query": {
        key: per_query(qrels, read_trec(out / "runs" / f"{run}.trec"), ["ndcg@10"])["ndcg@10"]
        for key, run in (("first_stage", "first_stage"), ("alone", "finetuned-alone"), ("fused", "finetuned"))}}


def main(argv=None) -> None:
    from rerankforge.core.metrics import paired_test

    args = parse_args(argv)
    source = Path(args.data_dir) / "scifact"
    lengths = [int(n) for n in args.lengths.split(",")]
    data = long_query_set(source, Path(args.out) / "data")
    short = run_eval(args, source, "short-64", 64)
    reports = {n: run_eval(args, data, f"long-{n}", n) for n in lengths}
    print(f"\nSciFact test, 300 claims, each after {TURNS} earlier turns; reranker {args.model}\n")
    print("| queries | max_query_length | first stage | reranker alone | fused | alone vs 64 | fused vs 64 | time |")
    print("|---|---|---|---|---|---|---|---|")
    base = reports[lengths[0]]["per_query"]

    def mean(values: dict) -> float:
        return sum(values.values()) / len(values)

    for label, n, report in [("short (original)", 64, short)] + [("long", n, reports[n]) for n in lengths]:
        pq = report["per_query"]
        tests = ["", ""]
        if report is not short and n != lengths[0]:
            tests = [(lambda t: f"{t['delta']:+.4f}, p = {t['p_value']:.3g} ({t['wins']}/{t['losses']})")(
                paired_test(base[key], pq[key])) for key in ("alone", "fused")]
        print(f"| {label} | {n} | {mean(pq['first_stage']):.4f} | {mean(pq['alone']):.4f} | {mean(pq['fused']):.4f} | "
              f"{tests[0]} | {tests[1]} | {report['seconds'] / 60:.1f} min |")


if __name__ == "__main__":
    main()
