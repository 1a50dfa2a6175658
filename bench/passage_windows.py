"""Long passages cut (FirstP, as CrossEncoder reads them) or read as windows (MaxP), judged on the mined dev split.

    python bench/passage_windows.py runs/quickstart [runs/covidqa ...] [--max-passage-tokens 4096]

Each argument is a finished quickstart folder (``mine/dev.jsonl``, ``train/final``). Its checkpoint scores every
dev query's first-stage candidates twice at the length it was trained at: once with each passage cut to what the
pair leaves, once with the passage read as overlapping windows of that length, scoring as its best window (the
eval key ``rerankers.<name>.max_passage_tokens`` and the Cohere route). Prints one row per folder and reading: dev
nDCG@10 alone and fused at the checkpoint's fitted weight, each against the first stage (paired t-test), and
windows against cut. Test is never read: this is how the quickstart's eval setting was chosen.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import fmean

from common import print_table, stat_cells


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="finished quickstart folders (mine/dev.jsonl, train/final)")
    parser.add_argument("--max-passage-tokens", type=int, default=4096, help="tokens of a passage read as windows")
    return parser.parse_args(argv)


def dev_runs(folder: Path, max_passage_tokens: int) -> tuple[object, dict[str, dict]]:
    """The dev split and the checkpoint's dev runs (logits) with passages cut and read as windows."""
    import yaml

    from rerankforge.core.dev_split import read_dev
    from rerankforge.models.export import rerank_dev
    from rerankforge.models.pairs import PairLimits
    from rerankforge.models.reranker import Reranker

    depth = yaml.safe_load((folder / "train" / "config.yaml").read_text())["data"]["dev_depth"]
    dev = read_dev(folder / "mine" / "dev.jsonl", depth)
    reranker = Reranker(str(folder / "train" / "final"), dtype="auto")
    windows = PairLimits(max_length=reranker.max_length, max_query_length=reranker.limits.max_query_length,
                         max_passage_tokens=max_passage_tokens)
    return dev, {name: rerank_dev(reranker, dev, limits) for name, limits in (("cut", None), ("windows", windows))}


def rows(folder: Path, max_passage_tokens: int) -> list[list[str]]:
    from rerankforge.core.metrics import paired_test, per_query
    from rerankforge.models.fusion import fuse_run

    dev, runs = dev_runs(folder, max_passage_tokens)
    fusion = json.loads((folder / "train" / "final" / "fusion.json").read_text())
    first = per_query(dev.qrels, dev.first_stage, ["ndcg@10"])["ndcg@10"]
    table, alone = [], {}
    for name, run in runs.items():
        fused = fuse_run(dev.first_stage, run, fusion["method"], fusion["alpha"], fusion["rrf_k"])
        alone[name] = per_query(dev.qrels, run, ["ndcg@10"])["ndcg@10"]
        fused_q = per_query(dev.qrels, fused, ["ndcg@10"])["ndcg@10"]
        versus = paired_test(alone["cut"], alone[name]) if name == "windows" else None
        table.append([str(folder), str(len(dev.qrels)), f"{fmean(first.values()):.4f}", name,
                      *stat_cells(first, alone[name]), *stat_cells(first, fused_q)[:3],
                      f"{versus['delta']:+.4f}, p = {versus['p_value']:.3g}" if versus else ""])
    return table


def main(argv=None) -> int:
    args = parse_args(argv)
    table = [["quickstart", "dev queries", "first stage", "passages", "alone", "delta", "p", "better / worse",
              "fused", "delta", "p", "windows vs cut (alone)"]]
    for folder in args.runs:
        table += rows(Path(folder), args.max_passage_tokens)
    print_table(f"Dev nDCG@10, long passages cut or read as windows (up to {args.max_passage_tokens} tokens)", table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
