"""Two training recipes judged on a test split: the reranker alone and fused, against each other and the first stage.

    python bench/compare_evals.py base=runs/a/eval candidate=runs/b/eval
    python bench/compare_evals.py base=runs/a-s42/eval,runs/a-s1/eval kl=runs/b-s42/eval,runs/b-s1/eval

Each argument is ``name=folder[,folder...]``: finished ``rerankforge eval`` folders over the same queries (one per
training seed). A recipe's per-query nDCG@10 is the mean over its folders (seeds pooled per query, so seed noise
averages out before the test). Prints one row per recipe: the reranker alone and fused, each against the first
recipe's (paired t-test over queries) and against the best first stage that eval reranked.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml


def per_query_runs(folder: Path, reranker: str, metric: str) -> dict[str, dict[str, float]]:
    """``{"first_stage"|"alone"|"fused": {query_id: value}}`` of one eval folder."""
    from rerankforge.core.metrics import per_query
    from rerankforge.eval.report import read_trec
    from rerankforge.retrieval.config import FieldNames
    from rerankforge.retrieval.loaders import load_qrels

    config = yaml.safe_load((folder / "config.yaml").read_text())
    problems: list = []
    qrels_file = json.loads((folder / "report.json").read_text())["data"]["sources"]["qrels"]  # as eval resolved it
    qrels = load_qrels(Path(qrels_file), FieldNames(**config["data"]["fields"]), problems)
    if problems:
        raise SystemExit(f"{folder}: cannot read its qrels: {problems[:3]}")
    runs = folder / "runs"
    files = {"first_stage": runs / "first_stage.trec", "alone": runs / f"{reranker}-alone.trec",
             "fused": runs / f"{reranker}.trec"}
    return {k: per_query(qrels, read_trec(p), [metric])[metric] for k, p in files.items() if p.exists()}


def pooled(folders: list[Path], reranker: str, metric: str) -> dict[str, dict[str, float]]:
    got = [per_query_runs(f, reranker, metric) for f in folders]
    keys = set.intersection(*(set(g) for g in got))
    return {k: {q: sum(g[k][q] for g in got) / len(got) for q in got[0][k]} for k in keys}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="+", metavar="NAME=FOLDER[,FOLDER...]")
    parser.add_argument("--reranker", default="finetuned", help="the reranker's name in the eval configs")
    parser.add_argument("--metric", default="ndcg@10")
    args = parser.parse_args(argv)
    from rerankforge.core.metrics import paired_test

    recipes = {}
    for spec in args.recipes:
        name, _, folders = spec.partition("=")
        recipes[name] = pooled([Path(f) for f in folders.split(",")], args.reranker, args.metric)
    base_name, base = next(iter(recipes.items()))

    def cell(a: dict, b: dict) -> str:
        t = paired_test(a, b)
        return f"{t['delta']:+.4f} (p = {t['p_value']:.3g}, {t['wins']}/{t['losses']})"

    print(f"| recipe | queries | best first stage | alone | alone vs {base_name} | alone vs first stage | fused | "
          f"fused vs {base_name} | fused vs first stage |\n|" + "---|" * 9)
    for name, got in recipes.items():
        mean = {k: sum(v.values()) / len(v) for k, v in got.items()}
        fused = ("fused" in got and "fused" in base)
        print(f"| {name} | {len(got['alone'])} | {mean['first_stage']:.4f} | {mean['alone']:.4f} | "
              f"{cell(base['alone'], got['alone'])} | {cell(got['first_stage'], got['alone'])} | "
              f"{mean.get('fused', float('nan')):.4f} | {cell(base['fused'], got['fused']) if fused else '-'} | "
              f"{cell(got['first_stage'], got['fused']) if 'fused' in got else '-'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
