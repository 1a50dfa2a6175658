"""Sweep training recipes for a cross-encoder started from a bi-encoder, judged on the dev split only.

    rerankforge mine --config configs/data_prep/scifact.yaml                                  # once
    python bench/sweep.py --train runs/mine/scifact                                           # default grid
    python bench/sweep.py --train runs/mine/scifact --variant fast="optim.lr=3e-4 max_steps=200"
    # the quickstart's recipe as it ran (its resolved configs), a mining variant re-mined with the same data and seed:
    python bench/sweep.py --train runs/quickstart/mine --config runs/quickstart/quickstart-train.yaml --no-shared \
        --variant base="" --variant margin-none="mine.mining.relative_margin=null"

Every variant trains from the same mined data with the shared settings below (none with ``--no-shared``) plus its
own overrides; overrides that start with ``mine.`` first re-mine into ``<out>/<variant>/mine`` from the
``--train`` folder's own config.yaml with those keys changed. The table compares each variant with the first one
(the baseline): best dev nDCG@10 of the reranker alone and its paired p against the baseline's and against the
dev first stage, dev nDCG@10 fused with the first stage at the fitted weight and its p against the baseline's,
that weight, training steps and wall time. With ``--seeds 42,1,2`` each variant trains once per seed (into
``<variant>-seed<N>``) and a second table compares per-query means over the seeds. The test split is never read.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, dev_per_query

SHARED = ["model.name_or_path=sentence-transformers/all-MiniLM-L6-v2", "data.dev=mined", "data.dev_depth=20",
          "mixed_precision=auto", "save_every=null", "optim.warmup_ratio=0.1", "loss.name=listwise_ce",
          "model.max_length=256", "max_steps=150", "eval_every=50", "batch_size=4", "data.group_size=8"]
# Around the quickstart's recipe (lr 2e-4, head 10x, no dropout), at half its steps so a grid fits a CPU afternoon.
GRID = {
    "quickstart": "optim.lr=2e-4 optim.head_lr_multiplier=10 model.dropout=0.0",
    "dropout0.1": "optim.lr=2e-4 optim.head_lr_multiplier=10 model.dropout=0.1",
    "head1x": "optim.lr=2e-4 optim.head_lr_multiplier=1 model.dropout=0.0",
    "lr1e-4": "optim.lr=1e-4 optim.head_lr_multiplier=20 model.dropout=0.0",
}


def mine_variant(args, name: str, overrides: list[str]) -> str:
    """``--train`` re-mined with ``mine.*`` overrides into ``<out>/<name>/mine`` (reused once finished)."""
    out = Path(args.out) / name / "mine"
    if not (out / "manifest.json").exists():
        subprocess.run([sys.executable, "-m", "rerankforge", "mine", "--config", str(Path(args.train) / "config.yaml"),
                        f"output_dir={out}", *(o[len("mine."):] for o in overrides)], check=True)
    return str(out)


def train(args, name: str, overrides: str, seed: int | None = None) -> dict:
    out = Path(args.out) / name / "train" if "mine." in overrides else Path(args.out) / name
    keys = shlex.split(overrides)
    if seed is not None:  # every seed of a variant trains on the same mined data
        out, keys = out.with_name(f"{out.name}-seed{seed}"), [*keys, f"seed={seed}"]
    mining = [o for o in keys if o.startswith("mine.")]
    data = mine_variant(args, name, mining) if mining else args.train
    command = [sys.executable, "-m", "rerankforge", "train", "--config", args.config, f"data.train={data}",
               f"output_dir={out}", *([] if args.no_shared else SHARED), *(o for o in keys if o not in mining)]
    timing = out / "sweep_seconds.txt"  # a finished variant is reused with the time it took
    if not (out / "final" / "fusion.json").exists() or not timing.exists():
        start = time.perf_counter()
        subprocess.run(command, check=True)
        timing.write_text(f"{time.perf_counter() - start:.1f}\n")
    seconds = float(timing.read_text())
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    fusion = json.loads((out / "final" / "fusion.json").read_text())
    return {"name": name if seed is None else f"{name} seed {seed}", "seconds": seconds, "steps": metrics[-1]["step"],
            "fusion": fusion, "alone": max(m["dev/ndcg@10"] for m in metrics if "dev/ndcg@10" in m), "dir": out}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True, help="a rerankforge mine output with a dev split")
    parser.add_argument("--config", default=str(ROOT / "configs" / "train" / "scifact-minilm.yaml"))
    parser.add_argument("--out", default="runs/bench-sweep")
    parser.add_argument("--variant", action="append", default=[], metavar='NAME="key=value ..."')
    parser.add_argument("--only", default="", help="comma-separated names of the default grid to run")
    parser.add_argument("--no-shared", action="store_true", help="only --config and each variant's overrides")
    parser.add_argument("--seeds", default="", help="comma-separated training seeds: each variant trains once per "
                        "seed, and a second table compares the per-query means over the seeds")
    args = parser.parse_args(argv)
    grid = dict(v.split("=", 1) for v in args.variant) or {
        k: v for k, v in GRID.items() if not args.only or k in args.only.split(",")}
    from rerankforge.core.metrics import paired_test

    seeds = [int(s) for s in args.seeds.split(",") if s] or [None]
    runs = {name: [train(args, name, overrides, seed) for seed in seeds] for name, overrides in grid.items()}
    results = [r for rs in runs.values() for r in rs]
    base = dev_per_query(results[0])
    print("| variant | steps | train min | dev nDCG@10 alone | p alone vs " + results[0]["name"] + " | p alone vs "
          "dev first stage | dev fused | p fused vs " + results[0]["name"] + " | method, alpha | dev first stage |\n|"
          + "---|" * 10)
    for r in results:
        f, got = r["fusion"], dev_per_query(r)
        alone, fused, first = (paired_test(a, b) for a, b in ((base["alone"], got["alone"]),
                                                                (base["fused"], got["fused"]),
                                                                (got["first_stage"], got["alone"])))
        print(f"| {r['name']} | {r['steps']} | {r['seconds'] / 60:.1f} | {r['alone']:.4f} | "
              f"{alone['p_value']:.3g} ({alone['delta']:+.4f}) | {first['p_value']:.3g} ({first['delta']:+.4f}) | "
              f"{f['methods'][f['method']]['ndcg@10']:.4f} | {fused['p_value']:.3g} ({fused['delta']:+.4f}) | "
              f"{f['method']}, {f['alpha']:.2f} | {f['first_stage_alone']:.4f} |")
    if seeds != [None]:
        print_pooled(runs, paired_test)
    for name, overrides in grid.items():
        print(f"{name}: {'' if args.no_shared else ' '.join(SHARED)} {overrides}")
    return 0


def print_pooled(runs: dict[str, list[dict]], paired_test) -> None:
    """Each variant's per-query dev nDCG@10 averaged over its seeds, against the first variant's and the dev
    first stage's (paired over queries, so seed noise averages out before the test)."""
    def mean_over(per_seed: list[dict[str, float]]) -> dict[str, float]:
        return {q: sum(p[q] for p in per_seed) / len(per_seed) for q in per_seed[0]}

    pooled = {}
    for name, rs in runs.items():
        got = [dev_per_query(r) for r in rs]
        pooled[name] = {k: mean_over([g[k] for g in got]) for k in ("alone", "fused", "first_stage")}
    base_name = next(iter(pooled))
    base = pooled[base_name]
    print(f"\n| variant (mean of {len(next(iter(runs.values())))} seeds per query) | dev alone | vs {base_name} | "
          f"vs dev first stage | dev fused | vs {base_name} |\n|" + "---|" * 6)
    for name, got in pooled.items():
        alone, first, fused = (paired_test(a, b) for a, b in ((base["alone"], got["alone"]),
                                                                (got["first_stage"], got["alone"]),
                                                                (base["fused"], got["fused"])))
        mean = {k: sum(v.values()) / len(v) for k, v in got.items()}
        print(f"| {name} | {mean['alone']:.4f} | {alone['delta']:+.4f} (p = {alone['p_value']:.3g}) | "
              f"{first['delta']:+.4f} (p = {first['p_value']:.3g}, {first['wins']}/{first['losses']}) | "
              f"{mean['fused']:.4f} | {fused['delta']:+.4f} (p = {fused['p_value']:.3g}) |")


if __name__ == "__main__":
    sys.exit(main())
