"""Seed benchmark: how a recipe's lift over its first stage holds across training seeds.

    python bench/seeds.py runs/cold/sf-s42/eval runs/cold/sf-s7/eval runs/cold/sf-s2/eval
    python bench/seeds.py --metric mrr@10 runs/quality/scifact/eval runs/quality-s1/scifact/eval

Each argument is an eval folder (``per_query.jsonl`` + ``report.json``) of the same test queries and first stage,
e.g. quickstarts that differ only in ``train.seed``. One row per run: the reranker (fused as it was evaluated)
against the first stage it reranked, with the paired t-test eval reports. The last row pools the runs: each
query's score averaged over the runs, against the first stage, so the p-value asks whether the recipe lifts in
expectation over seeds rather than whether one lucky seed did. ``--alone``: the reranker without fusion, as a
drop-in user gets it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from statistics import fmean

from common import print_table, stat_cells
from compare_evals import per_query_runs


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evals", nargs="+", help="eval output folders of the same data set and first stage")
    parser.add_argument("--metric", default="ndcg@10")
    parser.add_argument("--reranker", default="finetuned", help="the reranker's name in the eval config")
    parser.add_argument("--alone", action="store_true",
                        help="the reranker without first-stage scores, as eval read it alone, where eval fused it")
    return parser.parse_args(argv)


def read_eval(folder: Path, reranker: str, metric: str, alone: bool = False) -> dict:
    """``{"first_stage": {qid: value}, "system": {qid: value}, "fusion": ..., "first_stage_name": ...}``."""
    for name in ("per_query.jsonl", "report.json"):
        if not (folder / name).is_file():
            raise SystemExit(f"{folder} has no {name}: pass the eval output folder of a finished run.")
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    if reranker not in report["rerankers"]:
        raise SystemExit(f"{folder}/report.json has no reranker {reranker!r} (it has {list(report['rerankers'])}); "
                         "pass --reranker NAME.")
    first, system = {}, {}
    for line in (folder / "per_query.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        first[row["query_id"]] = row["first_stage"][metric]
        system[row["query_id"]] = row["rerankers"][reranker]["metrics"][metric]
    fusion = report["rerankers"][reranker].get("fusion")
    if alone and fusion:  # the alone run's per-query values are in its TREC file
        system, fusion = per_query_runs(folder, reranker, metric)["alone"], None
    return {"first_stage": first, "system": system, "fusion": fusion,
            "first_stage_name": report["first_stage"]["method"]}


def main(argv=None) -> int:
    args = parse_args(argv)
    runs = {folder: read_eval(Path(folder), args.reranker, args.metric, args.alone) for folder in args.evals}
    baseline = next(iter(runs.values()))
    if any(r["first_stage"] != baseline["first_stage"] for r in runs.values()):
        raise SystemExit("the runs differ in their first stage's per-query scores: compare runs of one data set "
                         "and one first stage (the same mine.first_stage.method and test split).")
    first, queries = baseline["first_stage"], sorted(baseline["first_stage"])
    table = [["run", "fusion", args.metric, f"delta vs {baseline['first_stage_name']}", "p", "better / worse"]]
    for folder, run in runs.items():
        fusion = run["fusion"]
        table.append([folder, f"{fusion['method']} {fusion['alpha']:.2f}" if fusion else "none",
                      *stat_cells(first, run["system"])])
    pooled = {q: fmean(run["system"][q] for run in runs.values()) for q in queries}
    table.append([f"**mean over {len(runs)} runs, per query**", "-", *stat_cells(first, pooled)])
    print_table(f"first stage ({baseline['first_stage_name']}): {args.metric} {fmean(first.values()):.4f} "
                f"over {len(queries)} queries", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
