"""Quality benchmark: a recipe (the quickstart's by default) run end to end on SciFact and COVID-QA.

    python bench/quality.py                                   # both data sets, configs/quickstart.yaml
    python bench/quality.py --datasets scifact train.max_steps=300 eval.rerankers.finetuned.depth=30
    python bench/quality.py --recipe my-recipe.yaml --data-dir ../shared/data

Each data set runs mine (train split, a dev split held out) → train → eval (test split) through the quickstart,
under ``--out/<dataset>`` (finished stages are reused when nothing changed). The table has, per data set, the
three first stages (BM25, dense, hybrid), the reranker alone and fused with its first stage: nDCG@10, MRR@10,
Recall@10, the paired t-test p-value of each against the best first stage, and the wall time of each stage.
With ``labels=synthetic`` (cold start) the training queries are generated for the corpus first and the train
labels are ignored; a third table counts what the generator made and what its filters dropped. Mining's first
stage is then set per data set, to the one served (docs/results.md: cold start):

    python bench/quality.py --datasets scifact labels=synthetic mine.first_stage.method=hybrid --out runs/bench-cold
    python bench/quality.py --datasets covidqa labels=synthetic mine.first_stage.method=bm25 --out runs/bench-cold
"""

from __future__ import annotations

import argparse
import sys

from common import ROOT, data_dir, run_dataset

METRICS = ("ndcg@10", "mrr@10", "recall@10")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=str(ROOT / "configs" / "quickstart.yaml"), help="a quickstart config")
    parser.add_argument("--datasets", default="scifact,covidqa", help="comma-separated BEIR folder names")
    parser.add_argument("--data-dir", default=str(data_dir()))
    parser.add_argument("--out", default="runs/bench-quality")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="quickstart config overrides")
    return parser.parse_args(argv)


def rows_for(name: str, result: dict) -> list[list[str]]:
    """Table rows of one data set: first stages, then the reranker alone and fused."""
    best, entry = result["best_first_stage"], result["finetuned"]
    runs = [(f"first stage: {m}" + (" (best)" if m == best else ""), v["metrics"], v["vs_best_first_stage"])
            for m, v in result["first_stages"].items()]
    if entry.get("alone"):
        runs.append((f"reranker alone (top-{entry['depth']})", entry["alone"]["metrics"],
                     entry["alone"]["vs_best_first_stage"]))
    fusion = entry.get("fusion")
    label = f"reranker fused ({fusion['method']}, alpha {fusion['alpha']:.2f})" if fusion else "reranker"
    runs.append((label, entry["metrics"], entry["vs_best_first_stage"]))
    rows = []
    for label, metrics, tests in runs:
        test = tests["ndcg@10"]
        p = "-" if label.endswith("(best)") else f"{test['p_value']:.3g} ({test['delta']:+.4f})"
        rows.append([name, label] + [f"{metrics[m]:.4f}" for m in METRICS] + [p])
    return rows


def main(argv=None) -> int:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    table = [["data set", "run", "nDCG@10", "MRR@10", "Recall@10", "p vs best first stage (nDCG@10 delta)"]]
    results = {name: run_dataset(args, name) for name in args.datasets.split(",")}
    names = list(dict.fromkeys(s for r in results.values() for s in r["stages"]))  # synth, mine, train, eval
    times = [["data set"] + [f"{s} s" for s in names] + ["total min", "reused"]]
    synth = [["data set", "passages", "generated", "kept", "dropped", "queries/s"]]
    for name, result in results.items():
        table += rows_for(name, result)
        stages = result["stages"]
        times.append([name] + [f"{stages[s]['seconds']:.0f}" if s in stages else "-" for s in names] +
                     [f"{sum(s['seconds'] for s in stages.values()) / 60:.1f}",
                      ",".join(s for s, v in stages.items() if v["reused"]) or "-"])
        if result.get("synth"):
            c = result["synth"]
            synth.append([name, str(c["passages_sampled"]), str(c["queries_generated"]), str(c["queries_kept"]),
                          ", ".join(f"{r} {n}" for r, n in c["dropped"].items() if n), str(result["synth_speed"])])
    for rows in (table, times) + ((synth,) if len(synth) > 1 else ()):
        print("| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]))
        print("\n".join("| " + " | ".join(r) + " |" for r in rows[1:]) + "\n")
    print(f"recipe: {args.recipe} {' '.join(args.overrides)}; outputs under {args.out}/<dataset>/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
