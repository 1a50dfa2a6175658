"""Fusion-weight benchmark: the weight a reranker trained without labels should get, measured on real labels.

    python bench/fusion_weight.py runs/cold/dev400/sf-s1 runs/cold/dev400/sf-s7 runs/cold/dev400/sf-s2
    python bench/fusion_weight.py --alpha 0.05 runs/cold/sf-s1/eval runs/cold/sf-s7/eval runs/cold/sf-s2/eval

Each argument is an eval folder (``runs/first_stage.trec``, ``runs/<reranker>-alone.trec``, ``config.yaml``) of
one data set, split and first stage, e.g. the models of several training seeds evaluated on a split the cold start
never trained on. Re-fuses each reranker with its first stage offline (``models/fusion.py``, the code eval runs;
logits recovered from the 6-decimal sigmoid scores) at every weight of the grid, and prints per weight the mean
over the runs of each query's score, against the first stage (paired t-test). ``--alpha`` prints one weight per
run and pooled, to apply a weight chosen on one split to another.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from statistics import fmean

import yaml
from common import print_table, read_qrels, read_trec_logits, stat_cells

from rerankforge.core.config import move_keys
from rerankforge.core.metrics import per_query
from rerankforge.eval.config import EvalConfig
from rerankforge.eval.report import read_trec
from rerankforge.models.fusion import ALPHA_GRID, fuse_run


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evals", nargs="+", help="eval output folders of one data set, split and first stage")
    parser.add_argument("--metric", default="ndcg@10",
                        help="a metric within the rerank depth (ndcg@10, mrr@10): only the reranked top is re-fused")
    parser.add_argument("--method", default="interpolation", choices=["interpolation", "rrf"])
    parser.add_argument("--alpha", type=float, help="one weight: per-run and pooled rows instead of the grid")
    parser.add_argument("--reranker", default="finetuned", help="the reranker's name in the eval config")
    return parser.parse_args(argv)


def read_runs(folder: Path, reranker: str) -> dict:
    """``{"qrels", "first_stage", "reranker", "method"}``: the first stage's run, best first, and the reranker's
    logits for the candidates it reranked (the first stage's top ``depth``)."""
    config = move_keys(yaml.safe_load((folder / "config.yaml").read_text()), EvalConfig)  # older folders too
    data, depth = config["data"], config["rerankers"][reranker]["depth"] or config["retrieve"]["top_k"]
    qrels = read_qrels(Path(data["path"]) / "qrels" / f"{data['split']}.tsv")
    first = read_trec(folder / "runs" / "first_stage.trec")
    alone = read_trec_logits(folder / "runs" / f"{reranker}-alone.trec")
    rerank = {q: {d: alone[q][d] for d in list(docs)[:depth]} for q, docs in first.items()}
    return {"qrels": {q: qrels[q] for q in first}, "first_stage": first, "reranker": rerank,
            "method": config["first_stage"]["method"]}


def scores(runs: dict, method: str, alpha: float, metric: str) -> dict[str, dict[str, float]]:
    """Per run, each query's ``metric`` with the reranker fused at ``alpha``."""
    return {name: per_query(r["qrels"], fuse_run(r["first_stage"], r["reranker"], method, alpha), [metric])[metric]
            for name, r in runs.items()}


def main(argv=None) -> int:
    args = parse_args(argv)
    runs = {folder: read_runs(Path(folder), args.reranker) for folder in args.evals}
    baseline = next(iter(runs.values()))
    for folder, run in runs.items():
        if (run["qrels"], run["first_stage"]) != (baseline["qrels"], baseline["first_stage"]):
            raise SystemExit(f"{folder} has another first stage or split than {args.evals[0]}: compare runs of one "
                             "data set, split and first stage.")
    first = per_query(baseline["qrels"], baseline["first_stage"], [args.metric])[args.metric]
    queries = sorted(first)
    table = [["alpha" if args.alpha is None else "run", args.metric, f"delta vs {baseline['method']}", "p",
              "better / worse"]]
    for alpha in ALPHA_GRID if args.alpha is None else (args.alpha,):
        per_run = scores(runs, args.method, alpha, args.metric)
        pooled = {q: fmean(values[q] for values in per_run.values()) for q in queries}
        if args.alpha is not None:
            table += [[name, *stat_cells(first, values)] for name, values in per_run.items()]
        label = f"{alpha:.2f}" if args.alpha is None else f"**mean over {len(runs)} runs, per query**"
        table.append([label, *stat_cells(first, pooled)])
    print_table(f"first stage ({baseline['method']}): {args.metric} {fmean(first.values()):.4f} over "
                f"{len(queries)} queries; {args.method} fusion", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
