"""Does the mining encoder change the reranker? The quickstart trained on negatives mined with the torch float32
bi-encoder vs with another encoder (default: OpenVINO in bfloat16 precision), same recipe and seed.

    python bench/mining_downstream.py [--data-dir ../shared/data] [--dataset scifact] [--out runs/bench-mining-downstream]
                                      [--side first_stage.encoder.backend=openvino first_stage.encoder.dtype=bfloat16]

Each side runs the quickstart (mine with ``first_stage.method=hybrid`` → train → eval on the test split) under
``--out/<side>`` (finished stages are reused). The other side's reranker is then evaluated again with the torch
side's eval config, so both rerank the same first-stage candidates. Prints the share of the torch side's hard
negatives the other side mined too, and each reranker's test nDCG@10 (fused and alone) with the paired t-test
against the torch side's (goal: within 0.005).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from common import ROOT, data_dir, run_dataset


def quickstart(args, side: str, encoder: list[str]) -> Path:
    out = Path(args.out) / side
    run_dataset(argparse.Namespace(recipe=str(ROOT / "configs" / "quickstart.yaml"), data_dir=args.data_dir,
                                   out=str(out), overrides=["mine.first_stage.method=hybrid",
                                                            f"mine.cache_dir={out / 'cache'}",
                                                            *[f"mine.{o}" for o in encoder]]), args.dataset)
    return out / args.dataset


def per_query(eval_dir: Path, run: str, qrels: dict) -> dict[str, float]:
    """Per-query nDCG@10 of ``runs/<run>.trec`` in an eval folder."""
    from rerankforge.core.metrics import per_query as measure

    scores: dict[str, dict[str, float]] = {}
    for line in (eval_dir / "runs" / f"{run}.trec").read_text(encoding="utf-8").splitlines():
        query_id, _, doc_id, _, score, _ = line.split()
        scores.setdefault(query_id, {})[doc_id] = float(score)
    return measure(qrels, scores, ["ndcg@10"])["ndcg@10"]


def hard_negatives(mine_dir: Path) -> dict[str, list[str]]:
    from datasets import load_from_disk

    return {f"{r['query_id']}\t{r['positive_id']}": [n for n, k in zip(r["negative_ids"], r["negative_kinds"])
                                                    if k == "hard"]
            for r in load_from_disk(str(mine_dir / "dataset"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(data_dir()))
    parser.add_argument("--dataset", default="scifact")
    parser.add_argument("--out", default="runs/bench-mining-downstream")
    parser.add_argument("--side", nargs="+",
                        default=["first_stage.encoder.backend=openvino", "first_stage.encoder.dtype=bfloat16"],
                        help="the mining encoder overrides compared with first_stage.encoder.dtype=float32 (torch)")
    args = parser.parse_args()
    base = quickstart(args, "torch-float32", ["first_stage.encoder.dtype=float32"])
    other_name = "-".join(o.split("=")[1] for o in args.side)
    other = quickstart(args, other_name, args.side)
    # the other reranker over the torch side's first stage: only the mined training set differs
    same_first_stage = other / "eval-on-torch-first-stage"
    if not (same_first_stage / "per_query.jsonl").exists():
        subprocess.run([sys.executable, "-m", "rerankforge", "eval", "--config", str(base / "eval" / "config.yaml"),
                        f"rerankers.finetuned.model={other / 'train' / 'final'}", f"output_dir={same_first_stage}"],
                       check=True)
    report(base, other, same_first_stage, other_name)


def report(base: Path, other: Path, same_first_stage: Path, other_name: str) -> None:
    from rerankforge.core.metrics import paired_test

    ref, mined = hard_negatives(base / "mine"), hard_negatives(other / "mine")
    shared = sum(len(set(n) & set(mined.get(k, ()))) for k, n in ref.items())
    print(f"hard negatives mined by both: {100 * shared / max(1, sum(map(len, ref.values()))):.1f}% of the torch "
          f"side's ({sum(map(len, ref.values()))})\n")
    print("| reranker trained on negatives from | first stage | run | test nDCG@10 | delta vs torch | p | better/worse |")
    print("|---|---|---|---|---|---|---|")
    from rerankforge.retrieval.config import FieldNames
    from rerankforge.retrieval.loaders import load_qrels

    config = json.loads((base / "eval" / "manifest.json").read_text())["inputs"]
    qrels = load_qrels(config["qrels"]["path"], FieldNames(), [])
    for run in ("finetuned", "finetuned-alone"):
        torch_scores = per_query(base / "eval", run, qrels)
        print(f"| torch float32 | torch float32 | {run} | {sum(torch_scores.values()) / len(torch_scores):.4f} "
              "| - | - | - |")
        for label, folder in ((other_name, other / "eval"), (other_name, same_first_stage)):
            scores = per_query(folder, run, qrels)
            test = paired_test(torch_scores, scores)
            stage = "torch float32" if folder == same_first_stage else other_name
            print(f"| {label} | {stage} | {run} | {sum(scores.values()) / len(scores):.4f} | {test['delta']:+.4f} "
                  f"| {test['p_value']:.3g} | {test['wins']}/{test['losses']} |")


if __name__ == "__main__":
    main()
