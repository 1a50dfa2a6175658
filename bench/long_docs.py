"""Long-document benchmark: COVID-QA's passages joined back into whole articles, scored by FirstP vs MaxP.

    python bench/long_docs.py --model runs/bench-quality/covidqa/train/final      # a fine-tuned reranker
    python bench/long_docs.py --model PATH --depth 10 --method bm25

COVID-QA's passages (``<article>_<i>``) are joined in order into one document per article (~23 KB, ~5,000
tokens) and its qrels lifted to the articles, in a folder under ``--out`` (built from the shared data; nothing is
downloaded). ``rerankforge eval`` then runs twice over the same articles with ``data.chunking.mode=all`` (200-token
passages, 32 shared): ``aggregate=first`` (FirstP: each article is its first passage, what truncating a long
document to the model's input does) and ``aggregate=max`` (MaxP: each article is its best passage), for the first
stage and the reranker alike. The table has nDCG@10, MRR@10 and Recall@10 of both, the paired t-test of MaxP
against FirstP, the time of each run and this process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from common import data_dir, join_articles

METRICS = ("ndcg@10", "mrr@10", "recall@10")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/bench-quality/covidqa/train/final",
                        help="the fine-tuned reranker (bench/quality.py writes this one)")
    parser.add_argument("--data-dir", default=str(data_dir()))
    parser.add_argument("--out", default="runs/bench-long-docs")
    parser.add_argument("--method", default="bm25", help="first stage (BM25 is COVID-QA's best)")
    parser.add_argument("--depth", type=int, default=10, help="articles reranked per query")
    parser.add_argument("--chunk-size", type=int, default=200)
    parser.add_argument("--max-queries", type=int, default=None)
    return parser.parse_args(argv)


def run_eval(args, articles: Path, aggregate: str) -> dict:
    from rerankforge.core.config import load_config
    from rerankforge.eval.config import EvalConfig
    from rerankforge.eval.report import read_trec
    from rerankforge.eval.run import evaluate

    out = Path(args.out) / f"eval-{aggregate}"
    overrides = [f"data.path={articles}", "data.chunking.mode=all", f"data.chunking.aggregate={aggregate}",
                 f"data.chunking.size={args.chunk_size}", f"first_stage.method={args.method}", "retrieve.top_k=50",
                 "first_stage.encoder.dtype=auto", f"output_dir={out}", "generate.kind=none",
                 "rerankers.finetuned.model=" + args.model, f"rerankers.finetuned.depth={args.depth}",
                 "rerankers.finetuned.dtype=auto", "rerankers.finetuned.max_length=256",
                 "rerankers.finetuned.fusion.method=auto",
                 f"metrics=[{','.join(METRICS)}]", "plots=false"]
    if args.max_queries:
        overrides.append(f"data.max_queries={args.max_queries}")
    start = time.perf_counter()
    evaluate(load_config(EvalConfig, None, overrides), command="bench/long_docs.py")
    report = json.loads((out / "report.json").read_text())
    report["seconds"] = time.perf_counter() - start
    report["runs"] = {name: {q: {d: float(s) for d, s in docs.items()} for q, docs in
                             read_trec(out / "runs" / f"{name}.trec").items()}
                      for name in ("first_stage", "finetuned", "finetuned-alone")}
    return report


def main(argv=None) -> None:
    from rerankforge.core.metrics import paired_test, per_query
    from rerankforge.retrieval.config import FieldNames
    from rerankforge.retrieval.loaders import load_qrels

    args = parse_args(argv)
    if not Path(args.model).exists():
        raise SystemExit(f"--model {args.model} does not exist: run `python bench/quality.py --datasets covidqa` "
                         "first (it trains the COVID-QA reranker there), or pass a checkpoint.")
    articles = join_articles(Path(args.data_dir) / "covidqa", Path(args.out) / "articles")
    reports = {agg: run_eval(args, articles, agg) for agg in ("first", "max")}
    data = reports["max"]["data"]
    qrels = load_qrels(articles / "qrels" / "test.tsv", FieldNames(), [])
    qrels = {q: qrels[q] for q in reports["max"]["runs"]["first_stage"]}
    fusion = reports["max"]["rerankers"]["finetuned"]["fusion"]
    print(f"\nCOVID-QA articles: {data['corpus_documents']} documents as {data['corpus_passages']} passages of "
          f"{args.chunk_size} tokens; {data['queries']} test queries; first stage {args.method}, reranker "
          f"{args.model} over the top {args.depth} articles; fused: {fusion}\n")
    print("| run | " + " | ".join(METRICS) + " | MaxP vs FirstP (nDCG@10) | time |")
    print("|---|" + "---|" * (len(METRICS) + 2))
    values = {agg: {name: per_query(qrels, run, METRICS) for name, run in r["runs"].items()}
              for agg, r in reports.items()}
    for label, name in (("first stage", "first_stage"), ("fine-tuned reranker alone", "finetuned-alone"),
                        ("fine-tuned reranker fused", "finetuned")):
        for agg, scoring in (("first", "FirstP"), ("max", "MaxP")):
            means = {m: sum(v.values()) / len(v) for m, v in values[agg][name].items()}
            test = ""
            if agg == "max":
                t = paired_test(values["first"][name]["ndcg@10"], values["max"][name]["ndcg@10"])
                test = f"{t['delta']:+.4f}, p = {t['p_value']:.3g} ({t['wins']}/{t['losses']})"
            print(f"| {label} {scoring} | " + " | ".join(f"{means[m]:.4f}" for m in METRICS) +
                  f" | {test} | {reports[agg]['seconds'] / 60:.1f} min |")
    best = values["max"]["first_stage"]["ndcg@10"]
    for name in ("finetuned-alone", "finetuned"):
        t = paired_test(best, values["max"][name]["ndcg@10"])
        print(f"MaxP {name} vs MaxP first stage: nDCG@10 {t['delta']:+.4f}, p = {t['p_value']:.3g} "
              f"({t['wins']}/{t['losses']})")
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2:.2f} GB")


if __name__ == "__main__":
    main()
